"""Nomad's ACL API: bootstrap, tokens, policies, roles (Nomad's api/acl.go)."""

from __future__ import annotations

from typing import Any, cast

from nomadd.api.client import Client

__all__ = ["ACL"]

Obj = dict[str, Any]


class ACL:
    def __init__(self, client: Client) -> None:
        self._c = client

    def _obj(self, value: object) -> Obj:
        return cast(Obj, value or {})

    def _list(self, value: object) -> list[Obj]:
        return cast(list[Obj], value or [])

    def bootstrap(self, secret: str = "") -> Obj:
        body = {"BootstrapSecret": secret} if secret else None
        return self._obj(self._c.post("/v1/acl/bootstrap", body)[0])

    # ---- policies --------------------------------------------------------------------------
    def policies(self) -> list[Obj]:
        return self._list(self._c.get("/v1/acl/policies")[0])

    def policy(self, name: str) -> Obj:
        return self._obj(self._c.get(f"/v1/acl/policy/{name}")[0])

    def put_policy(self, name: str, rules: str, description: str = "") -> None:
        self._c.post(f"/v1/acl/policy/{name}", {"Name": name, "Description": description, "Rules": rules})

    def delete_policy(self, name: str) -> None:
        self._c.delete(f"/v1/acl/policy/{name}")

    # ---- tokens ----------------------------------------------------------------------------
    def tokens(self) -> list[Obj]:
        return self._list(self._c.get("/v1/acl/tokens")[0])

    def token(self, accessor_id: str) -> Obj:
        return self._obj(self._c.get(f"/v1/acl/token/{accessor_id}")[0])

    def token_self(self) -> Obj:
        return self._obj(self._c.get("/v1/acl/token/self")[0])

    def create_token(self, token: Obj) -> Obj:
        return self._obj(self._c.post("/v1/acl/token", token)[0])

    def update_token(self, token: Obj) -> Obj:
        return self._obj(self._c.post(f"/v1/acl/token/{token['AccessorID']}", token)[0])

    def delete_token(self, accessor_id: str) -> None:
        self._c.delete(f"/v1/acl/token/{accessor_id}")

    # ---- roles -----------------------------------------------------------------------------
    def roles(self) -> list[Obj]:
        return self._list(self._c.get("/v1/acl/roles")[0])

    def role(self, role_id: str, *, by_name: bool = False) -> Obj:
        path = f"/v1/acl/role/name/{role_id}" if by_name else f"/v1/acl/role/{role_id}"
        return self._obj(self._c.get(path)[0])

    def create_role(self, role: Obj) -> Obj:
        return self._obj(self._c.post("/v1/acl/role", role)[0])

    def update_role(self, role: Obj) -> Obj:
        return self._obj(self._c.post(f"/v1/acl/role/{role['ID']}", role)[0])

    def delete_role(self, role_id: str) -> None:
        self._c.delete(f"/v1/acl/role/{role_id}")
