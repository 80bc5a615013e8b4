"""``nomadd operator snapshot inspect [-json] <file>`` (Nomad's command/operator_snapshot_inspect.go).

Reads the archive locally (no agent needed): its metadata, then rows and bytes per table.
"""

from __future__ import annotations

from nomadd.cli import meta
from nomadd.helper.flags import FlagSet
from nomadd.helper.snapshot_archive import SnapshotError, read_archive_file, table_stats

USAGE = "nomadd operator snapshot inspect [-json] <file>"


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}".replace(".0 ", " ")
        n /= 1024  # type: ignore[assignment]
    return str(n)


def run(args: list[str]) -> int:
    fs = FlagSet("operator snapshot inspect")
    fs.bool("json", "Output the snapshot information as JSON.")
    parsed = meta.parse_one(fs, args, USAGE, "<file>")
    if parsed is None:
        return 1
    opts, path = parsed
    try:
        _, info, state = read_archive_file(path)
        tables = table_stats(state)
    except SnapshotError as err:
        return meta.fail(f"Error verifying snapshot file {path}: {err}")
    if opts.get("json"):
        out = info.to_json()
        out["Tables"] = [{"Name": n, "Count": c, "Size": s} for n, c, s in tables]
        meta.print_json(out)
        return 0
    head = [
        ["Created", info.created],
        ["ID", info.id],
        ["Size", _size(info.size)],
        ["Index", str(info.index)],
        ["Term", str(info.term)],
        ["Version", str(info.version)],
        ["NomaddVersion", info.nomadd_version],
    ]
    width = max(len(k) for k, _ in head)
    print("\n".join(f"{k.ljust(width)} = {v}" for k, v in head))
    print()
    rows = [["Type", "Count", "Size"]]
    rows += [[n, str(c), _size(s)] for n, c, s in tables]
    rows.append(["Total", str(sum(c for _, c, _ in tables)), _size(sum(s for _, _, s in tables))])
    print(meta.columnize(rows))
    return 0
