"""Placement constraints (Nomad's ``Constraint``) and their operands."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import field

from nomadd.structs.codec import api

__all__ = [
    "CONSTRAINT_OPERANDS",
    "Constraint",
    "ConstraintOperand",
]


class ConstraintOperand:
    """Operand strings as Nomad spells them (``Constraint.Operand``)."""

    EQUAL = "="
    EQUAL2 = "=="
    IS = "is"
    NOT_EQUAL = "!="
    NOT = "not"
    GT = ">"
    GTE = ">="
    LT = "<"
    LTE = "<="
    REGEXP = "regexp"
    VERSION = "version"
    SEMVER = "semver"
    SET_CONTAINS = "set_contains"
    SET_CONTAINS_ALL = "set_contains_all"
    SET_CONTAINS_ANY = "set_contains_any"
    DISTINCT_HOSTS = "distinct_hosts"
    DISTINCT_PROPERTY = "distinct_property"
    IS_SET = "is_set"
    IS_NOT_SET = "is_not_set"


CONSTRAINT_OPERANDS = frozenset(
    v for k, v in vars(ConstraintOperand).items() if k.isupper() and isinstance(v, str)
)

_NEEDS_RTARGET = frozenset(
    {
        ConstraintOperand.GT,
        ConstraintOperand.GTE,
        ConstraintOperand.LT,
        ConstraintOperand.LTE,
        ConstraintOperand.SET_CONTAINS,
        ConstraintOperand.SET_CONTAINS_ALL,
        ConstraintOperand.SET_CONTAINS_ANY,
    }
)

_VERSION_PART = re.compile(r"^\s*(>=|<=|!=|=|>|<|~>)?\s*v?(\d+(?:\.\d+)*)(?:[-+][0-9A-Za-z.-]+)?\s*$")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Constraint:
    """``LTarget`` is an interpolated node property (``${attr.kernel.name}``, ``${meta.rack}``,
    ``${node.datacenter}``...); ``RTarget`` the value to compare with."""

    l_target: str = field(default="", metadata=api("LTarget"))
    r_target: str = field(default="", metadata=api("RTarget"))
    operand: str = "="

    def problems(self) -> list[str]:
        """What is wrong with this constraint (empty when valid), as ``Field: message``."""
        op = self.operand
        if op not in CONSTRAINT_OPERANDS:
            return [f"Operand: unknown constraint operand {op!r}"]
        out: list[str] = []
        if op in (ConstraintOperand.DISTINCT_HOSTS,):
            return out
        if op == ConstraintOperand.DISTINCT_PROPERTY:
            if not self.l_target:
                out.append("LTarget: distinct_property needs a property")
            return out
        if not self.l_target:
            out.append("LTarget: missing constraint target")
        if op in (ConstraintOperand.IS_SET, ConstraintOperand.IS_NOT_SET):
            return out
        if op == ConstraintOperand.REGEXP:
            try:
                re.compile(self.r_target)
            except re.error as err:
                out.append(f"RTarget: invalid regular expression: {err}")
        elif op in (ConstraintOperand.VERSION, ConstraintOperand.SEMVER):
            if not self.r_target or not all(_VERSION_PART.match(p) for p in self.r_target.split(",")):
                out.append(f"RTarget: invalid version constraint {self.r_target!r}")
        elif not self.r_target and op in _NEEDS_RTARGET:
            out.append("RTarget: missing constraint value")
        return out
