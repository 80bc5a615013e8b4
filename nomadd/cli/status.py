"""``nomadd status [<prefix>]`` (Nomad's command/status.go): without an argument, ``job status``;
with one, a prefix search over everything (``PUT /v1/search``) and, when exactly one object
matches (or one matches exactly), that object's status command with the same arguments."""

from __future__ import annotations

from nomadd.api.namespaces import Search
from nomadd.cli import load, meta

__all__ = ["ROUTES", "run"]

USAGE = "nomadd status [options] [<identifier>]"

# search context -> the command that shows one object of it
ROUTES = {
    "evals": "eval status",
    "nodes": "node status",
    "allocs": "alloc status",
    "jobs": "job status",
    "namespaces": "namespace status",
    "node_pools": "node pool info",
}


def _multiple(ident: str, matches: dict[str, list[str]]) -> int:
    lines = [f'Multiple matches found for id "{ident}"']
    for ctx, found in matches.items():
        if found:
            lines += [f"\n{ctx.replace('_', ' ').title()}:", ", ".join(found)]
    return meta.fail("\n".join(lines))


def run(args: list[str]) -> int:
    fs = meta.new_flagset("status")
    fs.bool("verbose", "Display full information.")
    parsed = meta.parse(fs, args, USAGE)
    if parsed is None:
        return 1
    opts, rest = parsed
    if not rest:
        return load("job status")(args)
    ident = rest[-1]
    try:
        reply = Search(meta.api_client(opts)).prefix(ident)
    except meta.APIError as err:
        return meta.fail(f"Error querying search with id: {err}")
    matches: dict[str, list[str]] = {k: list(v or []) for k, v in (reply.get("Matches") or {}).items()}
    exact = [ctx for ctx, found in matches.items() if found and found[0] == ident]
    if len(exact) > 1:
        return _multiple(ident, matches)
    if exact:
        match = exact[0]
    else:
        single = [ctx for ctx, found in matches.items() if len(found) == 1]
        if len(single) > 1 or any(len(found) > 1 for found in matches.values()):
            return _multiple(ident, matches)
        if not single:
            return meta.fail(f'No matches returned for query: "{ident}"')
        match = single[0]
    if match not in ROUTES:
        return meta.fail(f'Unable to resolve ID: "{ident}"')
    return load(ROUTES[match])(args)
