"""``nomadd namespace apply|list|status|delete`` and ``nomadd node pool apply|list|info|delete|
nodes|jobs`` (Nomad's command/namespace_*.go and command/node_pool_*.go).

One module for both families, whose verbs are alike; the command table names each function.
``namespace apply`` takes a name (with ``-description``/``-quota``) or a specification file;
``node pool apply`` a file. Files are HCL (``name = "x"`` / ``node_pool "x" { ... }``) or, with
``-json`` or a ``.json`` name, Nomad's API JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nomadd.api.client import Client
from nomadd.api.namespaces import Namespaces, NodePools
from nomadd.cli import meta
from nomadd.cli.job_file import read_text
from nomadd.cli.job_status import format_kv
from nomadd.helper.jobspec import JobFileError, hcl_document

Obj = dict[str, Any]
Body = Callable[[Client, dict[str, object], list[str]], int]

_NS_KEYS = {"name": "Name", "description": "Description", "quota": "Quota", "meta": "Meta"}
_CAPS = {
    "enabled_task_drivers": "EnabledTaskDrivers",
    "disabled_task_drivers": "DisabledTaskDrivers",
    "enabled_network_modes": "EnabledNetworkModes",
    "disabled_network_modes": "DisabledNetworkModes",
}


def _command(
    name: str, args_usage: str, nargs: int, body: Body, flags: Callable[[Any], None] | None = None
) -> Callable[[list[str]], int]:
    usage = f"nomadd {name} [options] {args_usage}".rstrip()

    def run(args: list[str]) -> int:
        fs = meta.new_flagset(name)
        if flags is not None:
            flags(fs)
        parsed = meta.parse(fs, args, usage)
        if parsed is None:
            return 1
        opts, rest = parsed
        if len(rest) != nargs:
            return meta.fail(f"This command takes {nargs} argument(s)\nUsage: {usage}")
        try:
            return body(meta.api_client(opts), opts, rest)
        except meta.APIError as err:
            return meta.fail(f"Error: {err}")
        except (JobFileError, _Ambiguous) as err:
            return meta.fail(f"Error: {err}")

    return run


def _meta_section(obj: Obj) -> str:
    found = obj.get("Meta") or {}
    if not found:
        return ""
    return "\n\nMetadata\n" + format_kv(sorted((str(k), str(v)) for k, v in found.items()))


def _block(value: Any) -> Obj:
    if isinstance(value, list):
        value = value[-1] if value else {}
    if not isinstance(value, dict):
        raise JobFileError("expected a block")
    return value


def _spec(path: str, opts: dict[str, object]) -> Any:
    text = read_text(path, "specification")
    if opts.get("json") or path.endswith(".json") or text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except ValueError as err:
            raise JobFileError(f"failed to parse JSON: {err}") from None
    return hcl_document(text)


# ---- namespaces ------------------------------------------------------------------------------


def _namespace_from_hcl(doc: Obj) -> Obj:
    out: Obj = {}
    for key, value in doc.items():
        if key in _NS_KEYS:
            out[_NS_KEYS[key]] = _block(value) if key == "meta" else value
        elif key == "capabilities":
            caps = _block(value)
            unknown = [k for k in caps if k not in _CAPS]
            if unknown:
                raise JobFileError(f"capabilities.{unknown[0]}: unknown key")
            out["Capabilities"] = {_CAPS[k]: v for k, v in caps.items()}
        else:
            raise JobFileError(f"{key}: unknown key")
    return out


def _ns_apply(c: Client, opts: dict[str, object], rest: list[str]) -> int:
    arg = rest[0]
    if Path(arg).is_file() or arg == "-":
        doc = _spec(arg, opts)
        ns = doc if isinstance(doc, dict) and "Name" in doc else _namespace_from_hcl(doc)
    else:
        api = Namespaces(c)
        try:
            ns = api.info(arg)[0]
        except meta.APIError as err:
            if err.status != 404:
                raise
            ns = {"Name": arg}
        for flag, key in (("description", "Description"), ("quota", "Quota")):
            if flag in opts:
                ns[key] = str(opts[flag])
    if not ns.get("Name"):
        return meta.fail("Namespace name required")
    Namespaces(c).register(ns)
    print(f'Successfully applied namespace "{ns["Name"]}"!')
    return 0


def _ns_apply_flags(fs: Any) -> None:
    fs.string("description", "An optional human readable description for the namespace.")
    fs.string("quota", "An optional quota to apply to the namespace.")
    fs.bool("json", "Parse the input as JSON.")


def _ns_list(c: Client, opts: dict[str, object], rest: list[str]) -> int:
    found, _ = Namespaces(c).list()
    if opts.get("json"):
        meta.print_json(found)
        return 0
    if not found:
        print("No namespaces found")
        return 0
    rows = [["Name", "Description"]] + [[n["Name"], n.get("Description") or ""] for n in found]
    print(meta.columnize(rows))
    return 0


class _Ambiguous(Exception):
    pass


def _find(api: Namespaces | NodePools, name: str, kind: str) -> Obj:
    """The object called ``name``, else the only one whose name starts with it (Nomad's lookup)."""
    try:
        return api.info(name)[0]
    except meta.APIError as err:
        if err.status != 404:
            raise
    found, _ = api.list(prefix=name)
    if len(found) == 1:
        return found[0]
    if not found:
        raise meta.APIError(404, f'No {kind} with prefix "{name}" found')
    names = "\n".join(str(o["Name"]) for o in found)
    raise _Ambiguous(f"Prefix matched multiple {kind}s\n\n{names}")


def _ns_status(c: Client, opts: dict[str, object], rest: list[str]) -> int:
    ns = _find(Namespaces(c), rest[0], "namespace")
    if opts.get("json"):
        meta.print_json(ns)
        return 0
    caps = ns.get("Capabilities") or {}
    rows = [
        ("Name", ns["Name"]),
        ("Description", ns.get("Description") or ""),
        ("Quota", ns.get("Quota") or ""),
    ]
    for key, label, empty in (
        ("EnabledTaskDrivers", "Enabled Drivers", "*"),
        ("DisabledTaskDrivers", "Disabled Drivers", ""),
        ("EnabledNetworkModes", "Enabled Network Modes", "*"),
        ("DisabledNetworkModes", "Disabled Network Modes", ""),
    ):
        rows.append((label, ",".join(caps.get(key) or []) or empty))
    print(format_kv(rows) + _meta_section(ns))
    return 0


def _ns_delete(c: Client, opts: dict[str, object], rest: list[str]) -> int:
    Namespaces(c).delete(rest[0])
    print(f'Successfully deleted namespace "{rest[0]}"!')
    return 0


def _json_flag(fs: Any) -> None:
    fs.bool("json", "Output (or, for apply, parse the input) as JSON.")


namespace_apply = _command("namespace apply", "<namespace|file>", 1, _ns_apply, _ns_apply_flags)
namespace_list = _command("namespace list", "", 0, _ns_list, _json_flag)
namespace_status = _command("namespace status", "<namespace>", 1, _ns_status, _json_flag)
namespace_delete = _command("namespace delete", "<namespace>", 1, _ns_delete)


# ---- node pools ------------------------------------------------------------------------------


def _pool_from_hcl(doc: Obj) -> Obj:
    pools = doc.get("node_pool")
    extra = [k for k in doc if k != "node_pool"]
    if extra:
        raise JobFileError(f"{extra[0]}: unknown key (a node pool file holds one node_pool block)")
    if not isinstance(pools, list) or len(pools) != 1 or not isinstance(pools[0], dict) or len(pools[0]) != 1:
        raise JobFileError("node_pool: a file must contain exactly one node_pool block")
    ((name, body),) = pools[0].items()
    body = _block(body)
    out: Obj = {"Name": name}
    for key, value in body.items():
        if key == "description":
            out["Description"] = value
        elif key == "meta":
            out["Meta"] = _block(value)
        elif key == "scheduler_config":
            out["SchedulerConfiguration"] = _block(value)
        else:
            raise JobFileError(f"node_pool.{key}: unknown key")
    return out


def _pool_apply(c: Client, opts: dict[str, object], rest: list[str]) -> int:
    doc = _spec(rest[0], opts)
    pool = doc if isinstance(doc, dict) and "Name" in doc else _pool_from_hcl(doc)
    NodePools(c).register(pool)
    print(f'Successfully applied node pool "{pool["Name"]}"!')
    return 0


def _pool_list(c: Client, opts: dict[str, object], rest: list[str]) -> int:
    found, _ = NodePools(c).list()
    if opts.get("json"):
        meta.print_json(found)
        return 0
    rows = [["Name", "Description"]] + [[p["Name"], p.get("Description") or ""] for p in found]
    print(meta.columnize(rows))
    return 0


def _pool_info(c: Client, opts: dict[str, object], rest: list[str]) -> int:
    pool = _find(NodePools(c), rest[0], "node pool")
    if opts.get("json"):
        meta.print_json(pool)
        return 0
    print(
        format_kv([("Name", pool["Name"]), ("Description", pool.get("Description") or "")])
        + _meta_section(pool)
    )
    return 0


def _pool_delete(c: Client, opts: dict[str, object], rest: list[str]) -> int:
    NodePools(c).delete(rest[0])
    print(f'Successfully deleted node pool "{rest[0]}"!')
    return 0


def _pool_nodes(c: Client, opts: dict[str, object], rest: list[str]) -> int:
    found, _ = NodePools(c).nodes(rest[0])
    if opts.get("json"):
        meta.print_json(found)
        return 0
    if not found:
        print(f'No nodes in node pool "{rest[0]}"')
        return 0
    rows = [["ID", "Node Pool", "DC", "Name", "Drain", "Eligibility", "Status"]]
    for n in found:
        drain = str(bool(n.get("Drain"))).lower()
        row = [n["ID"][:8], n.get("NodePool", ""), n.get("Datacenter", ""), n.get("Name", ""), drain]
        rows.append([*row, n.get("SchedulingEligibility", ""), n.get("Status", "")])
    print(meta.columnize(rows))
    return 0


def _pool_jobs(c: Client, opts: dict[str, object], rest: list[str]) -> int:
    found, _ = NodePools(c).jobs(rest[0])
    if opts.get("json"):
        meta.print_json(found)
        return 0
    if not found:
        print(f'No jobs in node pool "{rest[0]}"')
        return 0
    rows = [["ID", "Namespace", "Type", "Priority", "Status"]]
    rows += [
        [j["ID"], j.get("Namespace", ""), j.get("Type", ""), str(j.get("Priority", "")), j.get("Status", "")]
        for j in found
    ]
    print(meta.columnize(rows))
    return 0


node_pool_apply = _command("node pool apply", "<file>", 1, _pool_apply, _json_flag)
node_pool_list = _command("node pool list", "", 0, _pool_list, _json_flag)
node_pool_info = _command("node pool info", "<node pool>", 1, _pool_info, _json_flag)
node_pool_delete = _command("node pool delete", "<node pool>", 1, _pool_delete)
node_pool_nodes = _command("node pool nodes", "<node pool>", 1, _pool_nodes, _json_flag)
node_pool_jobs = _command("node pool jobs", "<node pool>", 1, _pool_jobs, _json_flag)
