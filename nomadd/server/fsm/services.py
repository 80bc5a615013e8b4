"""FSM cases of service registrations: ``SERVICE_REGISTRATION_UPSERT`` and ``_DELETE``."""

from __future__ import annotations

from nomadd.server.state import store_allocs, store_services
from nomadd.server.state.store import Txn
from nomadd.structs.requests.services import ServiceDeleteEntry, ServiceUpsertEntry

__all__ = ["apply_service_delete", "apply_service_upsert"]


def apply_service_upsert(txn: Txn, entry: ServiceUpsertEntry) -> int:
    """The allocation's set of registrations; none for an allocation that is gone or has
    stopped (a report that raced the stop must not bring its services back)."""
    alloc = store_allocs.get_alloc(txn, entry.alloc_id)
    regs = entry.registrations if alloc is not None and not alloc.client_terminal() else ()
    changed = store_services.replace_alloc_locked(txn, entry.alloc_id, regs)
    if not changed:
        txn.touch(store_services.TABLE)  # the write is visible to blocking queries all the same
    return changed


def apply_service_delete(txn: Txn, entry: ServiceDeleteEntry) -> bool:
    found = store_services.delete_locked(txn, entry.namespace, entry.id)
    if not found:
        txn.touch(store_services.TABLE)
    return found
