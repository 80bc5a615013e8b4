"""``nomadd acl ...``: bootstrap, and policy/token/role management (Nomad's command/acl_*.go).

One module for the whole ``acl`` family; the command table names each verb's function
(``nomadd.cli.acl:policy_apply``).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nomadd.api.acl import ACL
from nomadd.cli import meta

Obj = dict[str, Any]


def _na(values: list[str]) -> str:
    return ",".join(values) if values else "n/a"


def format_token(t: Obj) -> str:
    roles = [r.get("Name") or r.get("ID", "") for r in t.get("Roles") or []]
    rows = [
        ("Accessor ID", t.get("AccessorID", "")),
        ("Secret ID", t.get("SecretID", "")),
        ("Name", t.get("Name", "")),
        ("Type", t.get("Type", "")),
        ("Global", str(bool(t.get("Global"))).lower()),
        ("Create Time", t.get("CreateTime", "")),
        ("Expiry Time", t.get("ExpirationTime") or "<none>"),
        ("Create Index", str(t.get("CreateIndex", ""))),
        ("Modify Index", str(t.get("ModifyIndex", ""))),
        ("Policies", _na(list(t.get("Policies") or []))),
        ("Roles", _na(roles)),
    ]
    return "\n".join(f"{k:<12} = {v}" for k, v in rows)


def format_role(r: Obj) -> str:
    rows = [
        ("ID", r.get("ID", "")),
        ("Name", r.get("Name", "")),
        ("Description", r.get("Description", "")),
        ("Policies", _na([p.get("Name", "") for p in r.get("Policies") or []])),
        ("Create Index", str(r.get("CreateIndex", ""))),
        ("Modify Index", str(r.get("ModifyIndex", ""))),
    ]
    return "\n".join(f"{k:<12} = {v}" for k, v in rows)


def _command(
    name: str,
    args_usage: str,
    nargs: int,
    body: Callable[[ACL, dict[str, object], list[str]], int],
    flags: Callable[[Any], None] | None = None,
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
            return body(ACL(meta.api_client(opts)), opts, rest)
        except meta.APIError as err:
            return meta.fail(f"Error: {err}")
        except OSError as err:
            return meta.fail(f"Error reading file: {err}")

    return run


def _expired(t: Obj) -> str:
    when = t.get("ExpirationTime")
    if not when:
        return "false"
    moment = datetime.fromisoformat(re.sub(r"\.\d+", "", when).replace("Z", "+00:00"))
    return str(moment <= datetime.now(UTC)).lower()


def _strs(opts: dict[str, object], key: str) -> list[str]:
    value = opts.get(key) or []
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


# ---- bootstrap -----------------------------------------------------------------------------


def run(args: list[str]) -> int:
    """``nomadd acl bootstrap [<path to a file holding the secret>]``."""
    fs = meta.new_flagset("acl bootstrap")
    parsed = meta.parse(fs, args, "nomadd acl bootstrap [options] [<path>]")
    if parsed is None:
        return 1
    opts, rest = parsed
    if len(rest) > 1:
        return meta.fail("This command takes at most one argument: <path>")
    try:
        secret = ""
        if rest:
            secret = (Path(rest[0]).read_text() if rest[0] != "-" else sys.stdin.read()).strip()
        token = ACL(meta.api_client(opts)).bootstrap(secret)
    except meta.APIError as err:
        return meta.fail(f"Error bootstrapping: {err}")
    except OSError as err:
        return meta.fail(f"Error reading the bootstrap secret: {err}")
    print(format_token(token))
    return 0


# ---- policies ------------------------------------------------------------------------------


def _policy_apply(acl: ACL, opts: dict[str, object], rest: list[str]) -> int:
    name, path = rest
    rules = Path(path).read_text() if path != "-" else sys.stdin.read()
    acl.put_policy(name, rules, str(opts.get("description", "")))
    print(f'Successfully wrote "{name}" ACL policy!')
    return 0


def _policy_list(acl: ACL, opts: dict[str, object], rest: list[str]) -> int:
    policies = acl.policies()
    if not policies:
        print("No policies found")
        return 0
    print(
        meta.columnize([["Name", "Description"], *[[p["Name"], p.get("Description", "")] for p in policies]])
    )
    return 0


def _policy_info(acl: ACL, opts: dict[str, object], rest: list[str]) -> int:
    p = acl.policy(rest[0])
    print(f"Name        = {p['Name']}\nDescription = {p.get('Description', '')}")
    print(
        f"CreateIndex = {p.get('CreateIndex')}\nModifyIndex = {p.get('ModifyIndex')}\n\nRules\n\n{p['Rules']}"
    )
    return 0


def _policy_delete(acl: ACL, opts: dict[str, object], rest: list[str]) -> int:
    acl.delete_policy(rest[0])
    print(f'Successfully deleted "{rest[0]}" ACL policy!')
    return 0


def _description(fs: Any) -> None:
    fs.string("description", "A description of the policy.")


policy_apply = _command(
    "acl policy apply", "nomadd acl policy apply [options] <name> <path>", 2, _policy_apply, _description
)
policy_list = _command("acl policy list", "", 0, _policy_list)
policy_info = _command("acl policy info", "<name>", 1, _policy_info)
policy_delete = _command("acl policy delete", "<name>", 1, _policy_delete)


# ---- tokens --------------------------------------------------------------------------------


def _token_flags(fs: Any) -> None:
    fs.string("name", "A name for the token.")
    fs.string("type", "client or management (default client).")
    fs.bool("global", "The token is replicated to every region.")
    fs.strings("policy", "A policy for the token (repeatable).")
    fs.strings("role-id", "The ID of a role for the token (repeatable).")
    fs.strings("role-name", "The name of a role for the token (repeatable).")
    fs.string("ttl", 'How long the token lives ("1h"); default forever.')


def _token_body(opts: dict[str, object], base: Obj) -> Obj:
    body = dict(base)
    for flag, key in (("name", "Name"), ("type", "Type")):
        if flag in opts:
            body[key] = str(opts[flag])
    if opts.get("global"):
        body["Global"] = True
    if "policy" in opts:
        body["Policies"] = _strs(opts, "policy")
    roles = [{"ID": r} for r in _strs(opts, "role-id")] + [{"Name": r} for r in _strs(opts, "role-name")]
    if roles:
        body["Roles"] = roles
    if "ttl" in opts:
        body["ExpirationTTL"] = str(opts["ttl"])
    return body


def _token_create(acl: ACL, opts: dict[str, object], rest: list[str]) -> int:
    print(format_token(acl.create_token(_token_body(opts, {"Type": "client"}))))
    return 0


def _token_update(acl: ACL, opts: dict[str, object], rest: list[str]) -> int:
    current = acl.token(rest[0])
    print(format_token(acl.update_token(_token_body(opts, current))))
    return 0


def _token_list(acl: ACL, opts: dict[str, object], rest: list[str]) -> int:
    tokens = acl.tokens()
    if not tokens:
        print("No tokens found")
        return 0
    rows = [["Name", "Type", "Global", "Accessor ID", "Expired"]]
    for t in tokens:
        rows.append(
            [t.get("Name", ""), t["Type"], str(bool(t.get("Global"))).lower(), t["AccessorID"], "false"]
        )
    print(meta.columnize(rows))
    return 0


def _token_info(acl: ACL, opts: dict[str, object], rest: list[str]) -> int:
    print(format_token(acl.token(rest[0])))
    return 0


def _token_self(acl: ACL, opts: dict[str, object], rest: list[str]) -> int:
    print(format_token(acl.token_self()))
    return 0


def _token_delete(acl: ACL, opts: dict[str, object], rest: list[str]) -> int:
    acl.delete_token(rest[0])
    print(f"Token {rest[0]} successfully deleted")
    return 0


token_create = _command(
    "acl token create", "nomadd acl token create [options]", 0, _token_create, _token_flags
)
token_update = _command(
    "acl token update", "nomadd acl token update [options] <accessor_id>", 1, _token_update, _token_flags
)
token_list = _command("acl token list", "", 0, _token_list)
token_info = _command("acl token info", "<accessor_id>", 1, _token_info)
token_self = _command("acl token self", "", 0, _token_self)
token_delete = _command(
    "acl token delete", "nomadd acl token delete [options] <accessor_id>", 1, _token_delete
)


# ---- roles ---------------------------------------------------------------------------------


def _role_flags(fs: Any) -> None:
    fs.string("name", "The name of the role.")
    fs.string("description", "A description of the role.")
    fs.strings("policy", "A policy of the role (repeatable).")


def _role_body(opts: dict[str, object], base: Obj) -> Obj:
    body = dict(base)
    for flag, key in (("name", "Name"), ("description", "Description")):
        if flag in opts:
            body[key] = str(opts[flag])
    if "policy" in opts:
        body["Policies"] = [{"Name": p} for p in _strs(opts, "policy")]
    return body


def _role_create(acl: ACL, opts: dict[str, object], rest: list[str]) -> int:
    print(format_role(acl.create_role(_role_body(opts, {}))))
    return 0


def _role_update(acl: ACL, opts: dict[str, object], rest: list[str]) -> int:
    print(format_role(acl.update_role(_role_body(opts, acl.role(rest[0])))))
    return 0


def _role_list(acl: ACL, opts: dict[str, object], rest: list[str]) -> int:
    roles = acl.roles()
    if not roles:
        print("No ACL roles found")
        return 0
    rows = [["ID", "Name", "Description", "Policies"]]
    for r in roles:
        rows.append(
            [r["ID"], r["Name"], r.get("Description", ""), _na([p["Name"] for p in r.get("Policies") or []])]
        )
    print(meta.columnize(rows))
    return 0


def _role_info(acl: ACL, opts: dict[str, object], rest: list[str]) -> int:
    print(format_role(acl.role(rest[0], by_name=bool(opts.get("by-name")))))
    return 0


def _role_delete(acl: ACL, opts: dict[str, object], rest: list[str]) -> int:
    acl.delete_role(rest[0])
    print(f"ACL role {rest[0]} successfully deleted")
    return 0


def _by_name(fs: Any) -> None:
    fs.bool("by-name", "Look the role up by its name instead of its ID.")


role_create = _command("acl role create", "", 0, _role_create, _role_flags)
role_update = _command(
    "acl role update", "nomadd acl role update [options] <role_id>", 1, _role_update, _role_flags
)
role_list = _command("acl role list", "", 0, _role_list)
role_info = _command("acl role info", "<role_id>", 1, _role_info, _by_name)
role_delete = _command("acl role delete", "<role_id>", 1, _role_delete)
