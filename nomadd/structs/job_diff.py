"""Job diffs in Nomad's API shape (Nomad's structs/diff.go) and the plan's annotations of them
(scheduler/annotate.go).

:func:`job_diff` compares two versions of a job field by field and returns Nomad's ``JobDiff``
JSON: ``{Type, ID, Fields, Objects, TaskGroups: [{Type, Name, Fields, Objects, Tasks, Updates}]}``
where ``Type`` is ``Added``, ``Deleted``, ``Edited`` or ``None``. The walk is generic over the
struct dataclasses, with Nomad's naming rules:

* a scalar field is a ``FieldDiff`` ``{Type, Name, Old, New, Annotations}`` with Go's string form
  (``true``, ``30000000000``); an empty string counts as absent, as in Nomad;
* a string map (``Meta``, ``Env``) is flattened into the parent's fields as ``Meta[key]``; a
  free-form map (a task's driver ``Config``) is an object whose fields are its flattened keys
  (``args[0]``);
* a nested struct (``Resources``, ``RestartPolicy``...) is an ``ObjectDiff`` named like the field;
* a list of strings (``Datacenters``) is a set: one object whose fields are the added and
  deleted elements; a list of structs (``Constraints``) is a set of objects named in the
  singular (``Constraint``), each added or deleted whole;
* task groups and tasks are matched by name and always listed (``None`` when unchanged).

:func:`annotate` adds what the scheduler's dry run found: each group's ``Updates`` counts
(``create``, ``destroy``, ``in-place update``, ``create/destroy update``...), ``forces create`` /
``forces destroy`` on a changed ``Count`` and each changed task's ``forces in-place update`` or
``forces create/destroy update``.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import TYPE_CHECKING, TypeVar, cast

from nomadd.structs.codec import API_NAME_KEY, api_name

if TYPE_CHECKING:
    from nomadd.structs.job import Job, Task, TaskGroup

__all__ = [
    "ANNOTATION_FORCES_CREATE",
    "ANNOTATION_FORCES_DESTROY",
    "ANNOTATION_FORCES_DESTRUCTIVE",
    "ANNOTATION_FORCES_INPLACE",
    "DIFF_ADDED",
    "DIFF_DELETED",
    "DIFF_EDITED",
    "DIFF_NONE",
    "annotate",
    "job_diff",
]

Diff = dict[str, object]  # Nomad's API JSON
Named = TypeVar("Named", "Task", "TaskGroup")

DIFF_NONE = "None"
DIFF_ADDED = "Added"
DIFF_DELETED = "Deleted"
DIFF_EDITED = "Edited"

ANNOTATION_FORCES_CREATE = "forces create"
ANNOTATION_FORCES_DESTROY = "forces destroy"
ANNOTATION_FORCES_INPLACE = "forces in-place update"
ANNOTATION_FORCES_DESTRUCTIVE = "forces create/destroy update"

# Job fields Nomad leaves out of a diff: bookkeeping, and Update (copied into the groups).
_JOB_FILTER = frozenset(
    {
        "ID",
        "Status",
        "StatusDescription",
        "Version",
        "Stable",
        "CreateIndex",
        "ModifyIndex",
        "JobModifyIndex",
        "Update",
        "SubmitTime",
    }
)
_NAME = frozenset({"Name"})  # a group's or task's name is its diff's Name
# Fields diffed on their own (matched by name), not as a set of objects.
_NESTED = {"TaskGroups", "Tasks"}

# DesiredUpdates key → the group's ``Updates`` key (Nomad's UpdateType* constants).
_UPDATE_TYPES = (
    ("Ignore", "ignore"),
    ("Place", "create"),
    ("Migrate", "migrate"),
    ("Stop", "destroy"),
    ("Canary", "canary"),
    ("InPlaceUpdate", "in-place update"),
    ("DestructiveUpdate", "create/destroy update"),
)


def _go_string(value: object) -> str:
    """A scalar the way Nomad's flatmap prints it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)


def _field(name: str, old: str, new: str) -> Diff | None:
    if old == new:
        return None
    if not old:
        kind = DIFF_ADDED
    elif not new:
        kind = DIFF_DELETED
    else:
        kind = DIFF_EDITED
    return {"Type": kind, "Name": name, "Old": old, "New": new, "Annotations": None}


def _flatten(prefix: str, value: object, out: dict[str, str]) -> None:
    """Free-form JSON (a driver config) as flat ``key``, ``key.sub``, ``key[0]`` strings."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _flatten(f"{prefix}[{i}]", v, out)
    elif value is not None:
        out[prefix] = _go_string(value)


def _fields_of(old: Mapping[str, str], new: Mapping[str, str]) -> list[Diff]:
    out = []
    for name in sorted(set(old) | set(new)):
        d = _field(name, old.get(name, ""), new.get(name, ""))
        if d is not None:
            out.append(d)
    return out


def _kind(old: object, new: object, fields: list[Diff], objects: list[Diff]) -> str:
    if old is None and new is not None:
        return DIFF_ADDED
    if new is None and old is not None:
        return DIFF_DELETED
    return DIFF_EDITED if fields or objects else DIFF_NONE


def _is_struct(value: object) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def _struct_parts(
    old: object, new: object, skip: frozenset[str] = frozenset()
) -> tuple[list[Diff], list[Diff]]:
    """The field and object diffs of two values of one struct type (either may be None)."""
    sample = old if old is not None else new
    assert sample is not None
    flat_old: dict[str, str] = {}
    flat_new: dict[str, str] = {}
    objects: list[Diff] = []
    for f in dataclasses.fields(sample):  # type: ignore[arg-type]
        name = f.metadata.get(API_NAME_KEY) or api_name(f.name)
        if name in skip or name in _NESTED:
            continue
        a = getattr(old, f.name) if old is not None else None
        b = getattr(new, f.name) if new is not None else None
        value = a if a is not None else b
        if _is_struct(value):
            obj = _object(name, a, b)
            if obj is not None:
                objects.append(obj)
        elif isinstance(value, Mapping):
            if all(isinstance(v, str) for v in (*(a or {}).values(), *(b or {}).values())):
                flat_old.update({f"{name}[{k}]": v for k, v in (a or {}).items()})
                flat_new.update({f"{name}[{k}]": v for k, v in (b or {}).items()})
            else:
                obj = _free_form(name, a, b)
                if obj is not None:
                    objects.append(obj)
        elif isinstance(value, tuple):
            objects.extend(_set_diff(name, a or (), b or ()))
        else:
            flat_old[name] = _go_string(a) if old is not None else ""
            flat_new[name] = _go_string(b) if new is not None else ""
    objects.sort(key=lambda o: (o["Name"], o["Type"]))
    return _fields_of(flat_old, flat_new), objects


def _object(name: str, old: object, new: object) -> Diff | None:
    if old is None and new is None:
        return None
    fields, objects = _struct_parts(old, new)
    kind = _kind(old, new, fields, objects)
    if kind == DIFF_NONE:
        return None
    return {"Type": kind, "Name": name, "Fields": fields, "Objects": objects}


def _free_form(name: str, old: object, new: object) -> Diff | None:
    flat_old: dict[str, str] = {}
    flat_new: dict[str, str] = {}
    _flatten("", old, flat_old)
    _flatten("", new, flat_new)
    fields = _fields_of(flat_old, flat_new)
    if not fields:
        return None
    old_v = old if flat_old else None
    new_v = new if flat_new else None
    return {"Type": _kind(old_v, new_v, fields, []), "Name": name, "Fields": fields, "Objects": []}


def _singular(name: str) -> str:
    return name[:-1] if name.endswith("s") else name


def _set_diff(name: str, old: tuple[object, ...], new: tuple[object, ...]) -> list[Diff]:
    """Nomad's stringSetDiff (scalars: one object) and primitiveObjectSetDiff (structs: one
    object per added or deleted element)."""
    sample = old[0] if old else new[0] if new else None
    if sample is None:
        return []
    if not _is_struct(sample):
        olds = {_go_string(v) for v in old}
        news = {_go_string(v) for v in new}
        fields = [_field(name, v, "") for v in sorted(olds - news)]
        fields += [_field(name, "", v) for v in sorted(news - olds)]
        present = [f for f in fields if f is not None]
        if not present:
            return []
        kind = DIFF_ADDED if not olds else DIFF_DELETED if not news else DIFF_EDITED
        present.sort(key=lambda f: (f["Name"], f["Old"], f["New"]))
        return [{"Type": kind, "Name": name, "Fields": present, "Objects": []}]
    out = []
    for v in old:
        if v not in new:
            obj = _object(_singular(name), v, None)
            if obj is not None:
                out.append(obj)
    for v in new:
        if v not in old:
            obj = _object(_singular(name), None, v)
            if obj is not None:
                out.append(obj)
    return out


def _named(old: tuple[Named, ...], new: tuple[Named, ...]) -> list[tuple[str, Named | None, Named | None]]:
    olds = {x.name: x for x in old}
    news = {x.name: x for x in new}
    return [(n, olds.get(n), news.get(n)) for n in sorted(set(olds) | set(news))]


def _task_diff(name: str, old: Task | None, new: Task | None) -> Diff:
    fields, objects = _struct_parts(old, new, _NAME)
    return {
        "Type": _kind(old, new, fields, objects),
        "Name": name,
        "Fields": fields,
        "Objects": objects,
        "Annotations": None,
    }


def _group_diff(name: str, old: TaskGroup | None, new: TaskGroup | None) -> Diff:
    fields, objects = _struct_parts(old, new, _NAME)
    tasks = [_task_diff(n, a, b) for n, a, b in _named(old.tasks if old else (), new.tasks if new else ())]
    kind = _kind(old, new, fields, objects)
    if kind == DIFF_NONE and any(t["Type"] != DIFF_NONE for t in tasks):
        kind = DIFF_EDITED
    return {"Type": kind, "Name": name, "Fields": fields, "Objects": objects, "Tasks": tasks, "Updates": None}


def job_diff(old: Job | None, new: Job | None) -> Diff:
    """Nomad's ``Job.Diff(other, contextual=false)``: ``old`` None for a job that is new."""
    if old is None and new is None:
        return {"Type": DIFF_NONE, "ID": "", "Fields": [], "Objects": [], "TaskGroups": []}
    if old is not None and new is not None and old.id != new.id:
        raise ValueError(f"can not diff jobs with different IDs: {old.id!r} and {new.id!r}")
    fields, objects = _struct_parts(old, new, _JOB_FILTER)
    groups = [
        _group_diff(n, a, b)
        for n, a, b in _named(old.task_groups if old else (), new.task_groups if new else ())
    ]
    kind = _kind(old, new, fields, objects)
    if kind == DIFF_NONE and any(g["Type"] != DIFF_NONE for g in groups):
        kind = DIFF_EDITED
    job_id = new.id if new is not None else old.id if old is not None else ""
    return {"Type": kind, "ID": job_id, "Fields": fields, "Objects": objects, "TaskGroups": groups}


# ---- annotations (Nomad's scheduler/annotate.go) ------------------------------------------


def _items(diff: Diff, key: str) -> list[Diff]:
    return cast(list[Diff], diff.get(key) or [])


def annotate(diff: Diff, desired: Mapping[str, Mapping[str, int]]) -> Diff:
    """``diff`` with the plan's ``DesiredTGUpdates`` and Nomad's field and task annotations."""
    groups = []
    for tg in _items(diff, "TaskGroups"):
        tg = dict(tg)
        counts = desired.get(str(tg["Name"]))
        if counts is not None:
            updates = {key: int(counts.get(src, 0)) for src, key in _UPDATE_TYPES if counts.get(src)}
            tg["Updates"] = updates or None
        tg["Fields"] = [_count_annotated(f) for f in _items(tg, "Fields")]
        tg["Tasks"] = [_task_annotated(t, str(tg["Type"])) for t in _items(tg, "Tasks")]
        groups.append(tg)
    return {**diff, "TaskGroups": groups}


def _count_annotated(field: Diff) -> Diff:
    if field["Name"] != "Count":
        return field
    old = int(str(field["Old"] or 0))
    new = int(str(field["New"] or 0))
    if new > old:
        return {**field, "Annotations": [ANNOTATION_FORCES_CREATE]}
    if new < old:
        return {**field, "Annotations": [ANNOTATION_FORCES_DESTROY]}
    return field


def _task_annotated(task: Diff, group_type: str) -> Diff:
    kind = task["Type"]
    if kind == DIFF_NONE:
        return task
    if group_type in (DIFF_ADDED, DIFF_DELETED):
        if kind == DIFF_ADDED:
            return {**task, "Annotations": [ANNOTATION_FORCES_CREATE]}
        if kind == DIFF_DELETED:
            return {**task, "Annotations": [ANNOTATION_FORCES_DESTROY]}
    note = ANNOTATION_FORCES_DESTRUCTIVE if _destructive(task) else ANNOTATION_FORCES_INPLACE
    return {**task, "Annotations": [note]}


def _destructive(task: Diff) -> bool:
    """Nomad's rule: any field but KillTimeout, any object but constraints/services (and a
    LogConfig change other than Disabled), forces a new allocation."""
    if any(f["Name"] != "KillTimeout" for f in _items(task, "Fields")):
        return True
    for obj in _items(task, "Objects"):
        if obj["Name"] in ("Service", "Constraint", "Affinity", "Spread"):
            continue
        if obj["Name"] == "LogConfig":
            if any(f["Name"] == "Disabled" for f in _items(obj, "Fields")):
                return True
            continue
        return True
    return False
