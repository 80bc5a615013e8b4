"""TLS contexts of an agent, built from its ``tls`` block and reloaded in place on SIGHUP.

``AgentTLS`` holds three ``ssl.SSLContext``s that live as long as the agent:

* ``listener``: the HTTP port (API and internal RPC). It presents ``cert_file`` and trusts
  ``ca_file``; a client certificate is required with ``verify_https_client``, otherwise asked
  for (``CERT_OPTIONAL``): one from another CA still fails the handshake, and the internal RPC
  refuses a caller without one (``rpc``; see ``nomadd.agent.http.tls``).
* ``outgoing``: calls to servers (the internal RPC). It presents this agent's certificate and,
  with ``verify_server_hostname``, checks the server's certificate names
  ``server.<region>.nomad`` (:attr:`AgentTLS.server_name`).
* ``peer``: calls to any agent (the alloc-logs proxy to a client agent): the CA is checked, not
  the name (a client agent presents ``client.<region>.nomad``).

:meth:`AgentTLS.reload` loads the files again into the same contexts: new connections see the
new certificate at once, open ones keep theirs. A CA added by the new ``ca_file`` is trusted at
once; a CA removed from it stays trusted until the agent restarts (OpenSSL cannot forget one).
Turning TLS on or off needs a restart.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Mapping

from nomadd.helper.tlsnames import role_name
from nomadd.structs.config import TLS_VERSIONS, TLSConfig
from nomadd.structs.errors import ConfigError

__all__ = ["AgentTLS", "check_config", "peer_dns_names", "role_name"]

_VERSIONS = dict(
    zip(
        TLS_VERSIONS,
        (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3),
        strict=True,
    )
)


def peer_dns_names(peercert: Mapping[str, object] | None) -> frozenset[str]:
    """The DNS names of a verified peer certificate as ``SSLObject.getpeercert()`` gives it."""
    if not peercert:
        return frozenset()
    san = peercert.get("subjectAltName", ())
    names = {str(value) for kind, value in _pairs(san) if kind == "DNS"}
    return frozenset(names)


def _pairs(items: object) -> Iterable[tuple[object, object]]:
    if not isinstance(items, tuple | list):
        return ()
    return [(i[0], i[1]) for i in items if isinstance(i, tuple | list) and len(i) == 2]


def check_config(cfg: TLSConfig) -> None:
    """Nomad's rules for the block; a ``ConfigError`` names the key."""
    if cfg.tls_min_version not in _VERSIONS:
        raise ConfigError(
            f'tls.tls_min_version: "{cfg.tls_min_version}" is not one of {", ".join(TLS_VERSIONS)}'
        )
    if not cfg.enabled:
        return
    if cfg.http != cfg.rpc:
        raise ConfigError(
            "tls.http and tls.rpc must be equal: the internal RPC is served on the HTTP port "
            "(docs/configuration.md §tls)"
        )
    for key in ("ca_file", "cert_file", "key_file"):
        if not getattr(cfg, key):
            raise ConfigError(f"tls.{key}: required when TLS is enabled")


class AgentTLS:
    def __init__(self, cfg: TLSConfig) -> None:
        check_config(cfg)
        self.config = cfg
        self.listener = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.outgoing = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.peer = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self._load(cfg)

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    @property
    def scheme(self) -> str:
        return "https" if self.config.enabled else "http"

    @property
    def server_name(self) -> str | None:
        """The name outgoing RPC checks on a server's certificate, or None (CA only)."""
        return self.server_name_of(self.config.region)

    def server_name_of(self, region: str) -> str | None:
        """The name a server of ``region`` must hold (federation: calls to another region)."""
        if self.config.verify_server_hostname:
            return role_name("server", region)
        return None

    def reload(self, cfg: TLSConfig) -> None:
        """Load the (possibly rotated) files into the live contexts; raises ``ConfigError``
        and keeps the old ones when the new files are unusable."""
        check_config(cfg)
        if cfg.enabled != self.config.enabled:
            raise ConfigError("tls: turning TLS on or off needs a restart")
        # Check the new files on scratch contexts first, so a bad file changes nothing.
        _load_files(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), cfg)
        self._load(cfg)
        self.config = cfg

    def _load(self, cfg: TLSConfig) -> None:
        if not cfg.enabled:
            return
        version = _VERSIONS[cfg.tls_min_version]
        for ctx in (self.listener, self.outgoing, self.peer):
            ctx.minimum_version = version
            _load_files(ctx, cfg)
        self.listener.verify_mode = ssl.CERT_REQUIRED if cfg.verify_https_client else ssl.CERT_OPTIONAL
        self.outgoing.check_hostname = cfg.verify_server_hostname
        self.outgoing.verify_mode = ssl.CERT_REQUIRED
        self.peer.check_hostname = False
        self.peer.verify_mode = ssl.CERT_REQUIRED


def _load_files(ctx: ssl.SSLContext, cfg: TLSConfig) -> None:
    try:
        ctx.load_verify_locations(cafile=cfg.ca_file)
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(f"tls.ca_file: cannot load {cfg.ca_file}: {err}") from None
    try:
        ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(
            f"tls.cert_file/key_file: cannot load {cfg.cert_file} with {cfg.key_file}: {err}"
        ) from None
