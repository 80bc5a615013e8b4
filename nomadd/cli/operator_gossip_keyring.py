"""``nomadd operator gossip keyring -list|-install <key>|-use <key>|-remove <key>``
(Nomad's command/operator_gossip_keyring.go): the servers' gossip encryption keys.

Exactly one operation per call; each acts on every alive server of the region. To rotate:
``-install`` the new key, ``-use`` it, then ``-remove`` the old one.
"""

from __future__ import annotations

from nomadd.api.keyring import GossipKeyring
from nomadd.cli import meta

USAGE = "nomadd operator gossip keyring [options]"


def run(args: list[str]) -> int:
    fs = meta.new_flagset("operator gossip keyring")
    fs.bool("list", "List the installed keys and how many servers hold each.")
    fs.string("install", "Install a new key (base64) on every server.")
    fs.string("use", "Make an installed key the one that encrypts.")
    fs.string("remove", "Remove an installed key that is not in use.")
    parsed = meta.parse(fs, args, USAGE)
    if parsed is None:
        return 1
    opts, _ = parsed
    chosen = [op for op in ("install", "use", "remove") if opts.get(op)]
    if opts.get("list"):
        chosen.append("list")
    if len(chosen) != 1:
        return meta.fail("Exactly one of -list, -install, -use or -remove must be provided")
    ring = GossipKeyring(meta.api_client(opts))
    op = chosen[0]
    try:
        if op == "list":
            print("==> Gathering installed encryption keys...")
            resp = ring.list_keys()
            for node, msg in sorted((resp.get("Messages") or {}).items()):
                print(f"    {node}: {msg}")
            total = resp.get("NumNodes", 0)
            rows = [["Key", "Servers"]]
            rows += [[k, f"{n}/{total}"] for k, n in sorted((resp.get("Keys") or {}).items())]
            print(meta.columnize(rows))
            return 0
        key = str(opts[op])
        if op == "install":
            print("==> Installing new gossip encryption key...")
            ring.install(key)
        elif op == "use":
            print("==> Changing primary gossip encryption key...")
            ring.use(key)
        else:
            print("==> Removing gossip encryption key...")
            ring.remove(key)
    except meta.APIError as err:
        return meta.fail(f"error: {err}")
    return 0
