from __future__ import annotations

import ssl

from nomadd.agent.tls import deferred_ca_loading, load_deferred


def test_contexts_made_in_the_block_get_the_bundle_later() -> None:
    with deferred_ca_loading() as pending:
        ctx = ssl.create_default_context()
        assert ctx.cert_store_stats()["x509_ca"] == 0
    assert len(pending) == 1
    outside = ssl.create_default_context()  # the real method is back
    load_deferred(pending)
    assert pending == []
    assert ctx.cert_store_stats() == outside.cert_store_stats()
