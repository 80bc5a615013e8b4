#!/usr/bin/env python3
"""Writes tests/data/nomad_api_structs.json from the Go ``api`` package of a Nomad checkout: for
every struct reachable from the API objects tests/integration/test_api_shapes.py checks, its JSON
keys, Go types, whether ``omitempty`` lets Nomad leave the key out, and whether
Nomad's server sends the key at all (the same-named struct of ``nomad/structs`` has the field:
the api package also has fields only clients fill, e.g. the deprecated ``Node.Drain``). The test decodes what
nomadd answers against it (types, RFC 3339 times, keys that must be present), so the file is
data written from Nomad's source once, not something the test reads from outside the repo.

Usage: scripts/gen_nomad_api_structs.py <nomad checkout> [ROOT ...]
   e.g. git clone https://github.com/hashicorp/nomad /tmp/nomad && scripts/gen_nomad_api_structs.py /tmp/nomad
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "nomad_api_structs.json"
ROOTS = [
    "Job",
    "JobListStub",
    "JobSummary",
    "Allocation",
    "AllocationListStub",
    "Node",
    "NodeListStub",
    "Evaluation",
    "ACLToken",
    "ACLTokenListStub",
    "ACLPolicy",
    "ACLPolicyListStub",
    "Variable",
    "VariableMetadata",
    "Namespace",
    "NodePool",
    "Deployment",
]
_STRUCT = re.compile(r"^type (\w+) struct \{\n(.*?)^\}", re.S | re.M)
_FIELD = re.compile(r"^\s*(\w+(?:\s*,\s*\w+)*)?\s+([^\s`/]+)\s*(`[^`]*`)?")
_EMBED = re.compile(r"^\s*\*?(\w+)\s*(?://.*)?$")


def parse(api_dir: Path) -> dict[str, list[list[object]]]:
    structs: dict[str, list[list[object]]] = {}
    for path in sorted(api_dir.glob("*.go")):
        if path.name.endswith("_test.go"):
            continue
        for m in _STRUCT.finditer(path.read_text()):
            fields: list[list[object]] = []
            for line in m.group(2).splitlines():
                code = line.split("//", 1)[0].rstrip()
                if not code.strip():
                    continue
                emb = _EMBED.match(code)
                if emb:
                    fields.append(["...", emb.group(1), False])  # embedded: its fields promoted
                    continue
                fm = _FIELD.match(code)
                if fm is None or fm.group(1) is None:
                    continue
                tag = fm.group(3) or ""
                jt = re.search(r'json:"([^"]*)"', tag)
                name_tag, _, opts = (jt.group(1) if jt else "").partition(",")
                if name_tag == "-":
                    continue
                for name in (n.strip() for n in fm.group(1).split(",")):
                    if not name[0].isupper():
                        continue
                    fields.append([name_tag or name, fm.group(2), "omitempty" in opts])
            structs[m.group(1)] = fields
    return structs


# api struct name -> the nomad/structs struct the server encodes for it, where they differ
SERVER_NAMES = {"AllocationListStub": "AllocListStub", "AllocationMetric": "AllocMetric"}


def mark_sent(api: dict[str, list[list[object]]], server: dict[str, list[list[object]]]) -> None:
    """Append to each field whether the server's struct has it (True when there is no
    counterpart to compare with)."""
    for name, fields in api.items():
        theirs = server.get(SERVER_NAMES.get(name, name))
        keys = None if theirs is None else {str(f[0]) for f in _flatten(theirs, server)}
        for f in fields:
            f.append(True if keys is None or f[0] == "..." else f[0] in keys)


def _flatten(fields: list[list[object]], structs: dict[str, list[list[object]]]) -> list[list[object]]:
    out: list[list[object]] = []
    for f in fields:
        if f[0] == "..." and str(f[1]) in structs:
            out += _flatten(structs[str(f[1])], structs)
        else:
            out.append(f)
    return out


def reachable(structs: dict[str, list[list[object]]], roots: list[str]) -> dict[str, list[list[object]]]:
    out: dict[str, list[list[object]]] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in out or name not in structs:
            continue
        out[name] = structs[name]
        for _, typ, _ in structs[name]:
            todo += re.findall(r"[A-Za-z_]\w*", str(typ))
    return dict(sorted(out.items()))


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    structs = reachable(parse(Path(argv[0]) / "api"), argv[1:] or list(ROOTS))
    mark_sent(structs, parse(Path(argv[0]) / "nomad" / "structs"))
    OUT.write_text(json.dumps(structs, indent=1) + "\n")
    print(f"{OUT}: {len(structs)} structs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
