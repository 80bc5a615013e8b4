from __future__ import annotations

import ssl

from nomadd.agent.tls import deferred_ca_loading, load_deferred


def test_contexts_made_in_the_block_get_the_bundle_later() -> None:
    with deferred_ca_loading() as pending:
        verified = ssl.create_default_context()
        plain = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        plain.set_default_verify_paths()
        assert verified.cert_store_stats()["x509_ca"] == 0
    assert len(pending) == 2
    reference = ssl.create_default_context()  # the real methods are back
    assert reference.cert_store_stats()["x509_ca"] > 0, "this host has no CA bundle to compare with"
    load_deferred(pending)
    assert pending == []
    assert verified.cert_store_stats() == reference.cert_store_stats()
