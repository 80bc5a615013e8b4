"""Nomad's ACL API: ``/v1/acl/bootstrap``, ``/v1/acl/token[s]``, ``/v1/acl/polic{y,ies}``,
``/v1/acl/role[s]`` and one-time tokens (API JSON <-> the ``ACL.*`` structs, only here)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from nomadd.agent.http.internal_endpoint import call, envelope, query_result, write_result
from nomadd.agent.http.server import parse_query_options, read_json
from nomadd.helper.duration import parse_duration
from nomadd.structs.acl import ACL_CLIENT_TOKEN, ACLOneTimeToken, ACLPolicy, ACLRole, ACLRoleLink, ACLToken
from nomadd.structs.errors import NotFoundError, ValidationError
from nomadd.structs.requests import WriteMeta
from nomadd.structs.requests.acl import (
    ACL_BOOTSTRAP,
    ACL_DELETE_POLICIES,
    ACL_DELETE_ROLES,
    ACL_DELETE_TOKENS,
    ACL_EXCHANGE_ONE_TIME_TOKEN,
    ACL_GET_POLICY,
    ACL_GET_ROLE,
    ACL_GET_TOKEN,
    ACL_LIST_POLICIES,
    ACL_LIST_ROLES,
    ACL_LIST_TOKENS,
    ACL_UPSERT_ONE_TIME_TOKEN,
    ACL_UPSERT_POLICIES,
    ACL_UPSERT_ROLES,
    ACL_UPSERT_TOKENS,
    ACLBootstrapRequest,
    ACLDeleteRequest,
    ACLGetRequest,
    ACLListRequest,
    ACLOneTimeExchangeRequest,
    ACLUpsertPoliciesRequest,
    ACLUpsertRolesRequest,
    ACLUpsertTokensRequest,
)
from nomadd.structs.timeutil import format_time, parse_time

if TYPE_CHECKING:
    from nomadd.agent.agent import Agent
    from nomadd.agent.http.server import Router

__all__ = ["policy_to_api", "register", "role_to_api", "token_to_api"]


# ---- API JSON ------------------------------------------------------------------------------


def token_to_api(t: ACLToken, *, stub: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"AccessorID": t.accessor_id}
    if not stub:
        out["SecretID"] = t.secret_id
    out.update(
        {
            "Name": t.name,
            "Type": t.type,
            "Policies": list(t.policies),
            "Roles": [{"ID": r.id, "Name": r.name} for r in t.roles],
            "Global": t.global_,
            "Hash": "",
            "CreateTime": format_time(t.create_time),
            "ExpirationTime": format_time(t.expiration_time) if t.expiration_time else None,
            "CreateIndex": t.create_index,
            "ModifyIndex": t.modify_index,
        }
    )
    if not stub:
        out["ExpirationTTL"] = t.expiration_ttl
    return out


def policy_to_api(p: ACLPolicy, *, stub: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"Name": p.name, "Description": p.description}
    if not stub:
        out.update({"Rules": p.rules, "JobACL": None})
    out.update({"Hash": "", "CreateIndex": p.create_index, "ModifyIndex": p.modify_index})
    return out


def role_to_api(r: ACLRole) -> dict[str, Any]:
    return {
        "ID": r.id,
        "Name": r.name,
        "Description": r.description,
        "Policies": [{"Name": name} for name in r.policies],
        "Hash": "",
        "CreateIndex": r.create_index,
        "ModifyIndex": r.modify_index,
    }


def one_time_to_api(o: ACLOneTimeToken) -> dict[str, Any]:
    return {
        "OneTimeSecretID": o.one_time_secret_id,
        "AccessorID": o.accessor_id,
        "ExpiresAt": format_time(o.expires_at),
        "CreateIndex": o.create_index,
        "ModifyIndex": o.modify_index,
    }


def _str(body: dict[str, Any], key: str, default: str = "") -> str:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ValidationError(f"{key}: expected a string")
    return value


def _str_list(body: dict[str, Any], key: str) -> tuple[str, ...]:
    value = body.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(f"{key}: expected a list of strings")
    return tuple(value)


def _ttl(value: object) -> int:
    """``ExpirationTTL``: nanoseconds, or a Go duration string ("1h")."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValidationError("ExpirationTTL: expected nanoseconds or a duration string")
    if isinstance(value, int):
        return value
    try:
        return int(parse_duration(value) * 1e9)
    except ValueError:
        raise ValidationError(f"ExpirationTTL: invalid duration {value!r}") from None


def _token_from_api(body: dict[str, Any], accessor_id: str = "") -> ACLToken:
    roles = body.get("Roles") or []
    if not isinstance(roles, list) or not all(isinstance(r, dict) for r in roles):
        raise ValidationError("Roles: expected a list of {ID, Name} objects")
    expiration = body.get("ExpirationTime")
    if expiration is not None and not isinstance(expiration, str):
        raise ValidationError("ExpirationTime: expected an RFC 3339 time")
    try:
        expiration_ns = parse_time(expiration) if expiration else 0
    except ValueError:
        raise ValidationError(f"ExpirationTime: invalid time {expiration!r}") from None
    global_ = body.get("Global", False)
    if not isinstance(global_, bool):
        raise ValidationError("Global: expected a boolean")
    return ACLToken(
        accessor_id=accessor_id or _str(body, "AccessorID"),
        secret_id="",
        name=_str(body, "Name"),
        type=_str(body, "Type", ACL_CLIENT_TOKEN) or ACL_CLIENT_TOKEN,
        policies=_str_list(body, "Policies"),
        roles=tuple(ACLRoleLink(id=_str(r, "ID"), name=_str(r, "Name")) for r in roles),
        global_=global_,
        expiration_time=expiration_ns,
        expiration_ttl=_ttl(body.get("ExpirationTTL")),
    )


async def _body(req: web.Request, *, optional: bool = False) -> dict[str, Any]:
    if not req.body_exists:
        if optional:
            return {}
        raise ValidationError("Request body is empty")
    body = await read_json(req)
    if body is None and optional:
        return {}
    if not isinstance(body, dict):
        raise ValidationError("Request body must be a JSON object")
    return body


def write_result_meta(index: int, value: object) -> object:
    return write_result(WriteMeta(index=index), value)


# ---- bootstrap and tokens ------------------------------------------------------------------


async def bootstrap(agent: Agent, req: web.Request) -> object:
    body = await _body(req, optional=True)
    request = ACLBootstrapRequest(bootstrap_secret=_str(body, "BootstrapSecret"), **envelope(req))
    reply = await call(agent, ACL_BOOTSTRAP, request)
    assert reply.token is not None
    return write_result_meta(reply.meta.index, token_to_api(reply.token))


async def list_tokens(agent: Agent, req: web.Request) -> object:
    opts = parse_query_options(req)
    reply = await call(agent, ACL_LIST_TOKENS, ACLListRequest(prefix=opts.prefix, **envelope(req, opts)))
    return query_result(reply.meta, [token_to_api(t, stub=True) for t in reply.tokens])


async def create_token(agent: Agent, req: web.Request) -> object:
    token = _token_from_api(await _body(req))
    if token.accessor_id:
        raise ValidationError("AccessorID must not be set when creating a token")
    reply = await call(agent, ACL_UPSERT_TOKENS, ACLUpsertTokensRequest(tokens=(token,), **envelope(req)))
    assert reply.token is not None
    return write_result_meta(reply.meta.index, token_to_api(reply.token))


async def get_token(agent: Agent, req: web.Request) -> object:
    key = req.match_info.get("accessor", "self")
    reply = await call(agent, ACL_GET_TOKEN, ACLGetRequest(key=key, **envelope(req)))
    if reply.token is None:
        raise NotFoundError("ACL token not found")
    return query_result(reply.meta, token_to_api(reply.token))


async def _update_body(req: web.Request, param: str, key: str) -> tuple[str, dict[str, Any]]:
    """The ID in the URL and the body of an update, whose ``key`` (if given) must match it."""
    object_id = req.match_info[param]
    body = await _body(req)
    given = body.get(key)
    if given and given != object_id:
        raise ValidationError(f"{key} in the body does not match the URL")
    return object_id, body


async def update_token(agent: Agent, req: web.Request) -> object:
    accessor, body = await _update_body(req, "accessor", "AccessorID")
    token = _token_from_api(body, accessor)
    reply = await call(agent, ACL_UPSERT_TOKENS, ACLUpsertTokensRequest(tokens=(token,), **envelope(req)))
    assert reply.token is not None
    return write_result_meta(reply.meta.index, token_to_api(reply.token))


async def delete_token(agent: Agent, req: web.Request) -> object:
    request = ACLDeleteRequest(keys=(req.match_info["accessor"],), **envelope(req))
    reply = await call(agent, ACL_DELETE_TOKENS, request)
    return write_result(reply.meta, None)


async def one_time_token(agent: Agent, req: web.Request) -> object:
    reply = await call(agent, ACL_UPSERT_ONE_TIME_TOKEN, ACLListRequest(**envelope(req)))
    return write_result_meta(reply.meta.index, {"OneTimeToken": one_time_to_api(reply.one_time_token)})


async def exchange_one_time_token(agent: Agent, req: web.Request) -> object:
    body = await _body(req)
    request = ACLOneTimeExchangeRequest(one_time_secret_id=_str(body, "OneTimeSecretID"), **envelope(req))
    reply = await call(agent, ACL_EXCHANGE_ONE_TIME_TOKEN, request)
    assert reply.token is not None
    return write_result_meta(reply.meta.index, {"Token": token_to_api(reply.token)})


# ---- policies ------------------------------------------------------------------------------


async def list_policies(agent: Agent, req: web.Request) -> object:
    opts = parse_query_options(req)
    reply = await call(agent, ACL_LIST_POLICIES, ACLListRequest(prefix=opts.prefix, **envelope(req, opts)))
    return query_result(reply.meta, [policy_to_api(p, stub=True) for p in reply.policies])


async def get_policy(agent: Agent, req: web.Request) -> object:
    reply = await call(agent, ACL_GET_POLICY, ACLGetRequest(key=req.match_info["name"], **envelope(req)))
    if reply.policy is None:
        raise NotFoundError("ACL policy not found")
    return query_result(reply.meta, policy_to_api(reply.policy))


async def put_policy(agent: Agent, req: web.Request) -> object:
    name = req.match_info["name"]
    body = await _body(req)
    given = _str(body, "Name")
    if given and given != name:
        raise ValidationError("Policy name does not match request path")
    policy = ACLPolicy(name=name, description=_str(body, "Description"), rules=_str(body, "Rules"))
    request = ACLUpsertPoliciesRequest(policies=(policy,), **envelope(req))
    reply = await call(agent, ACL_UPSERT_POLICIES, request)
    return write_result(reply.meta, None)


async def delete_policy(agent: Agent, req: web.Request) -> object:
    request = ACLDeleteRequest(keys=(req.match_info["name"],), **envelope(req))
    reply = await call(agent, ACL_DELETE_POLICIES, request)
    return write_result(reply.meta, None)


# ---- roles ---------------------------------------------------------------------------------


def _role_from_api(body: dict[str, Any], role_id: str = "") -> ACLRole:
    policies = body.get("Policies") or []
    if not isinstance(policies, list) or not all(isinstance(p, dict) for p in policies):
        raise ValidationError("Policies: expected a list of {Name} objects")
    return ACLRole(
        id=role_id or _str(body, "ID"),
        name=_str(body, "Name"),
        description=_str(body, "Description"),
        policies=tuple(_str(p, "Name") for p in policies),
    )


async def list_roles(agent: Agent, req: web.Request) -> object:
    opts = parse_query_options(req)
    reply = await call(agent, ACL_LIST_ROLES, ACLListRequest(prefix=opts.prefix, **envelope(req, opts)))
    return query_result(reply.meta, [role_to_api(r) for r in reply.roles])


async def create_role(agent: Agent, req: web.Request) -> object:
    role = _role_from_api(await _body(req))
    if role.id:
        raise ValidationError("ID must not be set when creating a role")
    reply = await call(agent, ACL_UPSERT_ROLES, ACLUpsertRolesRequest(roles=(role,), **envelope(req)))
    assert reply.role is not None
    return write_result_meta(reply.meta.index, role_to_api(reply.role))


async def update_role(agent: Agent, req: web.Request) -> object:
    role_id, body = await _update_body(req, "id", "ID")
    role = _role_from_api(body, role_id)
    reply = await call(agent, ACL_UPSERT_ROLES, ACLUpsertRolesRequest(roles=(role,), **envelope(req)))
    assert reply.role is not None
    return write_result_meta(reply.meta.index, role_to_api(reply.role))


async def get_role(agent: Agent, req: web.Request) -> object:
    by_name = "name" in req.match_info
    key = req.match_info["name"] if by_name else req.match_info["id"]
    reply = await call(agent, ACL_GET_ROLE, ACLGetRequest(key=key, by_name=by_name, **envelope(req)))
    if reply.role is None:
        raise NotFoundError("ACL role not found")
    return query_result(reply.meta, role_to_api(reply.role))


async def delete_role(agent: Agent, req: web.Request) -> object:
    reply = await call(
        agent, ACL_DELETE_ROLES, ACLDeleteRequest(keys=(req.match_info["id"],), **envelope(req))
    )
    return write_result(reply.meta, None)


def register(router: Router) -> None:
    for method in ("PUT", "POST"):
        router.add(method, "/v1/acl/bootstrap", bootstrap)
        router.add(method, "/v1/acl/token", create_token)
        router.add(method, "/v1/acl/token/onetime", one_time_token)
        router.add(method, "/v1/acl/token/onetime/exchange", exchange_one_time_token)
        router.add(method, "/v1/acl/role", create_role)
    router.add("GET", "/v1/acl/tokens", list_tokens)
    router.add("GET", "/v1/acl/token/self", get_token)
    router.add("GET", "/v1/acl/token/{accessor}", get_token)
    router.add("PUT", "/v1/acl/token/{accessor}", update_token)
    router.add("POST", "/v1/acl/token/{accessor}", update_token)
    router.add("DELETE", "/v1/acl/token/{accessor}", delete_token)
    router.add("GET", "/v1/acl/policies", list_policies)
    router.add("GET", "/v1/acl/policy/{name}", get_policy)
    router.add("PUT", "/v1/acl/policy/{name}", put_policy)
    router.add("POST", "/v1/acl/policy/{name}", put_policy)
    router.add("DELETE", "/v1/acl/policy/{name}", delete_policy)
    router.add("GET", "/v1/acl/roles", list_roles)
    router.add("GET", "/v1/acl/role/name/{name}", get_role)
    router.add("GET", "/v1/acl/role/{id}", get_role)
    router.add("PUT", "/v1/acl/role/{id}", update_role)
    router.add("POST", "/v1/acl/role/{id}", update_role)
    router.add("DELETE", "/v1/acl/role/{id}", delete_role)
