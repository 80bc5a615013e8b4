"""Job specifications: Nomad API JSON (``{"Job": {...}}``) and HCL job files, both turned into
the API JSON job the agent expects. Used by the CLI (``job run``, ``job validate``) and by the
agent's ``PUT /v1/jobs/parse``, so it sits in ``helper`` (below both; docs/architecture.md
§Layering) and imports nothing of the structs: the known keys are listed here, and
``tests/unit/cli/test_job_file.py`` checks the table against ``nomadd.structs``.

Unlike the HTTP API (which ignores unknown keys, as Nomad's does), a job FILE is checked
strictly: an unknown key is an error naming its path (``Job.TaskGroups[0].Tasks[0].Drivr: unknown
key``; HCL: ``job.group[0].task[0].drivr: unknown key``) so typos do not silently drop settings.

HCL variables: ``variable "name" { type = ..., default = ... }`` blocks and ``locals { x = ... }``;
values come from an HCL variables file (``name = value`` lines: ``-var-file`` and the parse API's
``Variables``) and ``-var`` pairs; references are ``var.name``/``local.name``, or ``${...}``
inside strings (Nomad's HCL2 subset that needs no functions).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from nomadd.helper import duration
from nomadd.helper.jobspec_schema import JOB_SCHEMA

__all__ = [
    "HCL_MISSING",
    "JOB_SCHEMA",
    "JobFileError",
    "hcl_document",
    "hcl_to_api",
    "parse_duration_ns",
    "parse_hcl",
    "parse_job_text",
    "parse_json",
]

HCL_MISSING = (
    "HCL job files need the python-hcl2 package, a dependency of nomadd: pip install python-hcl2 "
    '(or write the job as API JSON: {"Job": {...}})'
)
MAX_VARIABLES = 1024


class JobFileError(Exception):
    """The job file cannot be read, parsed, or has an unknown key (the message names it)."""


# ---- strict check of API JSON -------------------------------------------------------------


def check_keys(value: Any, schema: Any, path: str) -> None:
    """Raise :class:`JobFileError` for the first key of ``value`` not in ``schema``."""
    if schema is None or value is None:
        return
    if isinstance(schema, list):
        if not isinstance(value, list):
            raise JobFileError(f"{path}: expected a list")
        for i, item in enumerate(value):
            check_keys(item, schema[0], f"{path}[{i}]")
        return
    if not isinstance(value, dict):
        raise JobFileError(f"{path}: expected an object")
    for key, item in value.items():
        if key not in schema:
            raise JobFileError(f"{path}.{key}: unknown key")
        check_keys(item, schema[key], f"{path}.{key}")


# ---- durations ----------------------------------------------------------------------------


def parse_duration_ns(text: str, path: str) -> int:
    """Go-style duration (``"1h30m"``, ``"15s"``, ``"500ms"``) in nanoseconds."""
    try:
        return duration.parse_duration_ns(text)
    except ValueError:
        raise JobFileError(f"{path}: invalid duration {text!r}") from None


# ---- HCL ----------------------------------------------------------------------------------


# keys python-hcl2 adds that are no part of the document: block markers and comments
_HCL2_MARKERS = frozenset({"__is_block__", "__comments__", "__inline_comments__"})


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps string quotes (``'"dc1"'``) and adds markers and comments (:data:`_HCL2_MARKERS`)."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            return json.loads(value)
        except ValueError:
            return value[1:-1]
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items() if k not in _HCL2_MARKERS}
    return value


def _block(raw: Any, path: str) -> dict[str, Any]:
    """A non-labelled block (``resources { ... }``): one map (the last one wins)."""
    if isinstance(raw, list):
        if not raw:
            return {}
        raw = raw[-1]
    if not isinstance(raw, dict):
        raise JobFileError(f"{path}: expected a block")
    return raw


def _labelled(raw: Any, path: str) -> list[tuple[str, dict[str, Any]]]:
    """Labelled blocks (``group "web" { ... }``) as (label, body) pairs, in file order."""
    out = []
    for i, item in enumerate(raw if isinstance(raw, list) else [raw]):
        if not isinstance(item, dict) or len(item) != 1:
            raise JobFileError(f"{path}[{i}]: expected one labelled block")
        ((label, body),) = item.items()
        out.append((str(label), _block(body, f"{path}[{i}]")))
    return out


def _fields(body: dict[str, Any], path: str, spec: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """Map simple HCL attributes to API keys: spec = hcl name -> (API name, kind)."""
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key not in spec:
            raise JobFileError(f"{path}.{key}: unknown key")
        api, kind = spec[key]
        if kind == "dur":
            value = parse_duration_ns(str(value), f"{path}.{key}") if isinstance(value, str) else value
        elif kind == "map":
            value = _block(value, f"{path}.{key}")
        out[api] = value
    return out


_RESTART_HCL = {
    "attempts": ("Attempts", "v"),
    "interval": ("Interval", "dur"),
    "delay": ("Delay", "dur"),
    "mode": ("Mode", "v"),
    "render_templates": ("RenderTemplates", "v"),
}
_RESCHEDULE_HCL = {
    "attempts": ("Attempts", "v"),
    "interval": ("Interval", "dur"),
    "delay": ("Delay", "dur"),
    "delay_function": ("DelayFunction", "v"),
    "max_delay": ("MaxDelay", "dur"),
    "unlimited": ("Unlimited", "v"),
}
_LIFECYCLE_HCL = {"hook": ("Hook", "v"), "sidecar": ("Sidecar", "v")}
_MIGRATE_HCL = {
    "max_parallel": ("MaxParallel", "v"),
    "health_check": ("HealthCheck", "v"),
    "min_healthy_time": ("MinHealthyTime", "dur"),
    "healthy_deadline": ("HealthyDeadline", "dur"),
}
_DISCONNECT_HCL = {
    "lost_after": ("LostAfter", "dur"),
    "replace": ("Replace", "v"),
    "reconcile": ("Reconcile", "v"),
    "stop_on_client_after": ("StopOnClientAfter", "dur"),
}
_UPDATE_HCL = {
    "stagger": ("Stagger", "dur"),
    "max_parallel": ("MaxParallel", "v"),
    "health_check": ("HealthCheck", "v"),
    "min_healthy_time": ("MinHealthyTime", "dur"),
    "healthy_deadline": ("HealthyDeadline", "dur"),
    "progress_deadline": ("ProgressDeadline", "dur"),
    "auto_revert": ("AutoRevert", "v"),
    "auto_promote": ("AutoPromote", "v"),
    "canary": ("Canary", "v"),
}
_SCALING_HCL = {
    "min": ("Min", "v"),
    "max": ("Max", "v"),
    "enabled": ("Enabled", "v"),
    "policy": ("Policy", "map"),
}
_RESOURCES_HCL = {
    "cpu": ("CPU", "v"),
    "cores": ("Cores", "v"),
    "memory": ("MemoryMB", "v"),
    "memory_max": ("MemoryMaxMB", "v"),
}
_LOGS_HCL = {
    "max_files": ("MaxFiles", "v"),
    "max_file_size": ("MaxFileSizeMB", "v"),
    "disabled": ("Disabled", "v"),
}
_PERIODIC_HCL = {  # Nomad's jobspec2: cron/crons are the spec, spec_type is always cron
    "cron": ("Spec", "v"),
    "crons": ("Specs", "v"),
    "prohibit_overlap": ("ProhibitOverlap", "v"),
    "time_zone": ("TimeZone", "v"),
    "enabled": ("Enabled", "v"),
}
_PARAMETERIZED_HCL = {
    "payload": ("Payload", "v"),
    "meta_required": ("MetaRequired", "v"),
    "meta_optional": ("MetaOptional", "v"),
}
_DISK_HCL = {"size": ("SizeMB", "v"), "sticky": ("Sticky", "v"), "migrate": ("Migrate", "v")}


_VOLUME_HCL = {"type": ("Type", "v"), "source": ("Source", "v"), "read_only": ("ReadOnly", "v")}
_VOLUME_MOUNT_HCL = {
    "volume": ("Volume", "v"),
    "destination": ("Destination", "v"),
    "read_only": ("ReadOnly", "v"),
    "propagation_mode": ("PropagationMode", "v"),
}
_PORT_HCL = {"static": ("Value", "v"), "to": ("To", "v"), "host_network": ("HostNetwork", "v")}


def _networks(raw: Any, path: str) -> list[dict[str, Any]]:
    """``network { mode = "host"  port "http" { static = 8080 }  port "x" {} }`` blocks: a port
    with ``static`` is reserved, one without is dynamic."""
    out = []
    for i, item in enumerate(raw if isinstance(raw, list) else [raw]):
        p = f"{path}[{i}]"
        net: dict[str, Any] = {"ReservedPorts": [], "DynamicPorts": []}
        for key, value in _block(item, p).items():
            if key == "port":
                for j, (label, body) in enumerate(_labelled(value, f"{p}.port")):
                    port = {"Label": label, **_fields(body, f"{p}.port[{j}]", _PORT_HCL)}
                    net["ReservedPorts" if "Value" in port else "DynamicPorts"].append(port)
            elif key in ("mode", "mbits", "hostname"):
                net[{"mode": "Mode", "mbits": "MBits", "hostname": "Hostname"}[key]] = value
            else:
                raise JobFileError(f"{p}.{key}: unknown key")
        out.append(net)
    return out


_SERVICE_HCL = {
    "name": ("Name", "v"),
    "port": ("PortLabel", "v"),
    "tags": ("Tags", "v"),
    "canary_tags": ("CanaryTags", "v"),
    "provider": ("Provider", "v"),
    "address": ("Address", "v"),
    "address_mode": ("AddressMode", "v"),
    "task": ("TaskName", "v"),
    "meta": ("Meta", "map"),
}
_CHECK_HCL = {
    "name": ("Name", "v"),
    "type": ("Type", "v"),
    "path": ("Path", "v"),
    "method": ("Method", "v"),
    "protocol": ("Protocol", "v"),
    "port": ("PortLabel", "v"),
    "interval": ("Interval", "dur"),
    "timeout": ("Timeout", "dur"),
    "initial_status": ("InitialStatus", "v"),
    "tls_skip_verify": ("TLSSkipVerify", "v"),
}


def _services(raw: Any, path: str) -> list[dict[str, Any]]:
    """``service { name = "web"  port = "http"  check { type = "tcp" ... } }`` blocks."""
    out = []
    for i, item in enumerate(raw if isinstance(raw, list) else [raw]):
        p = f"{path}[{i}]"
        body = dict(_block(item, p))
        checks = body.pop("check", None)
        svc = _fields(body, p, _SERVICE_HCL)
        if checks is not None:
            svc["Checks"] = [
                _fields(_block(c, f"{p}.check[{j}]"), f"{p}.check[{j}]", _CHECK_HCL)
                for j, c in enumerate(checks if isinstance(checks, list) else [checks])
            ]
        out.append(svc)
    return out


def _constraints(raw: Any, path: str) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(raw if isinstance(raw, list) else [raw]):
        p = f"{path}[{i}]"
        c: dict[str, Any] = {}
        for key, value in _block(item, p).items():
            if key == "attribute":
                c["LTarget"] = value
            elif key == "value":
                c["RTarget"] = str(value)
            elif key == "operator":
                c["Operand"] = value
            elif key in (
                "distinct_hosts",
                "distinct_property",
                "regexp",
                "version",
                "semver",
                "set_contains",
            ):
                c["Operand"] = key
                if key != "distinct_hosts":
                    c["RTarget"] = str(value)
            else:
                raise JobFileError(f"{p}.{key}: unknown key")
        out.append(c)
    return out


def _task(name: str, body: dict[str, Any], path: str) -> dict[str, Any]:
    task: dict[str, Any] = {"Name": name}
    for key, value in body.items():
        p = f"{path}.{key}"
        if key in ("driver", "user", "kill_signal", "leader"):
            task[
                {"driver": "Driver", "user": "User", "kill_signal": "KillSignal", "leader": "Leader"}[key]
            ] = value
        elif key == "kill_timeout":
            task["KillTimeout"] = parse_duration_ns(str(value), p)
        elif key in ("config", "env", "meta"):
            task[{"config": "Config", "env": "Env", "meta": "Meta"}[key]] = _block(value, p)
        elif key == "constraint":
            task["Constraints"] = _constraints(value, p)
        elif key == "resources":
            body = dict(_block(value, p))
            nets = body.pop("network", None)
            task["Resources"] = _fields(body, p, _RESOURCES_HCL)
            if nets is not None:
                task["Resources"]["Networks"] = _networks(nets, f"{p}.network")
        elif key == "restart":
            task["RestartPolicy"] = _fields(_block(value, p), p, _RESTART_HCL)
        elif key == "logs":
            task["LogConfig"] = _fields(_block(value, p), p, _LOGS_HCL)
        elif key == "lifecycle":
            task["Lifecycle"] = _fields(_block(value, p), p, _LIFECYCLE_HCL)
        elif key == "volume_mount":
            items = value if isinstance(value, list) else [value]
            task["VolumeMounts"] = [
                _fields(_block(v, f"{p}[{i}]"), f"{p}[{i}]", _VOLUME_MOUNT_HCL) for i, v in enumerate(items)
            ]
        elif key == "dispatch_payload":
            task["DispatchPayload"] = _fields(_block(value, p), p, {"file": ("File", "v")})
        elif key == "service":
            task["Services"] = _services(value, p)
        else:
            raise JobFileError(f"{p}: unknown key")
    return task


def _group(name: str, body: dict[str, Any], path: str) -> dict[str, Any]:
    group: dict[str, Any] = {"Name": name}
    for key, value in body.items():
        p = f"{path}.{key}"
        if key == "count":
            group["Count"] = value
        elif key == "meta":
            group["Meta"] = _block(value, p)
        elif key == "constraint":
            group["Constraints"] = _constraints(value, p)
        elif key == "restart":
            group["RestartPolicy"] = _fields(_block(value, p), p, _RESTART_HCL)
        elif key == "reschedule":
            group["ReschedulePolicy"] = _fields(_block(value, p), p, _RESCHEDULE_HCL)
        elif key == "update":
            group["Update"] = _fields(_block(value, p), p, _UPDATE_HCL)
        elif key == "migrate":
            group["Migrate"] = _fields(_block(value, p), p, _MIGRATE_HCL)
        elif key == "disconnect":
            group["Disconnect"] = _fields(_block(value, p), p, _DISCONNECT_HCL)
        elif key == "max_client_disconnect":
            group["MaxClientDisconnect"] = (
                parse_duration_ns(str(value), p) if isinstance(value, str) else value
            )
        elif key == "ephemeral_disk":
            group["EphemeralDisk"] = _fields(_block(value, p), p, _DISK_HCL)
        elif key == "scaling":
            group["Scaling"] = _fields(_block(value, p), p, _SCALING_HCL)
        elif key == "network":
            group["Networks"] = _networks(value, p)
        elif key == "volume":
            group["Volumes"] = {
                n: {"Name": n, **_fields(b, f"{p}[{i}]", _VOLUME_HCL)}
                for i, (n, b) in enumerate(_labelled(value, p))
            }
        elif key == "service":
            group["Services"] = _services(value, p)
        elif key == "task":
            group["Tasks"] = [_task(n, b, f"{p}[{i}]") for i, (n, b) in enumerate(_labelled(value, p))]
        else:
            raise JobFileError(f"{p}: unknown key")
    return group


_JOB_SIMPLE = {
    "name": "Name",
    "namespace": "Namespace",
    "region": "Region",
    "type": "Type",
    "priority": "Priority",
    "all_at_once": "AllAtOnce",
    "datacenters": "Datacenters",
    "node_pool": "NodePool",
}


def hcl_to_api(doc: dict[str, Any]) -> dict[str, Any]:
    """The API JSON job of a parsed (unquoted) HCL document with one ``job "id" {}`` block."""
    for key in doc:
        if key != "job":
            raise JobFileError(f"{key}: unknown key (a job file holds one job block)")
    jobs = _labelled(doc.get("job") or [], "job")
    if len(jobs) != 1:
        raise JobFileError("job: a job file must contain exactly one job block")
    job_id, body = jobs[0]
    job: dict[str, Any] = {"ID": job_id}
    for key, value in body.items():
        p = f"job.{key}"
        if key in _JOB_SIMPLE:
            job[_JOB_SIMPLE[key]] = value
        elif key == "meta":
            job["Meta"] = _block(value, p)
        elif key == "constraint":
            job["Constraints"] = _constraints(value, p)
        elif key == "update":
            job["Update"] = _fields(_block(value, p), p, _UPDATE_HCL)
        elif key == "migrate":
            job["Migrate"] = _fields(_block(value, p), p, _MIGRATE_HCL)
        elif key == "periodic":
            job["Periodic"] = {"SpecType": "cron", **_fields(_block(value, p), p, _PERIODIC_HCL)}
        elif key == "parameterized":
            job["ParameterizedJob"] = _fields(_block(value, p), p, _PARAMETERIZED_HCL)
        elif key == "group":
            job["TaskGroups"] = [_group(n, b, f"{p}[{i}]") for i, (n, b) in enumerate(_labelled(value, p))]
        else:
            raise JobFileError(f"{p}: unknown key")
    return job


def _hcl2() -> Any:
    try:
        import hcl2  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise JobFileError(HCL_MISSING) from None
    return hcl2


def _loads(text: str, what: str) -> dict[str, Any]:
    hcl2 = _hcl2()
    try:
        doc = hcl2.loads(text)
    except Exception as err:
        raise JobFileError(f"failed to parse {what}: {err}") from None
    return doc if isinstance(doc, dict) else {}


_REF = re.compile(r"\$\{\s*((?:var|local)\.[A-Za-z_][A-Za-z0-9_-]*)\s*\}")
_SAMPLES: Mapping[str, Any] = {"number": 0, "bool": False, "string": ""}  # a variable's ``type``


def _substitute(value: Any, values: Mapping[str, Any], path: str) -> Any:
    """``${var.x}`` and ``${local.x}`` replaced by their values (the value itself when it is the
    whole string, its text inside a longer string)."""
    if isinstance(value, str) and "${" in value:

        def lookup(ref: str) -> Any:
            if ref not in values:
                kind, _, name = ref.partition(".")
                what = "variable" if kind == "var" else "local value"
                raise JobFileError(f'{path}: Unknown {what}: There is no {what} named "{name}".')
            return values[ref]

        whole = _REF.fullmatch(value)
        if whole:
            return lookup(whole.group(1))
        return _REF.sub(lambda m: str(lookup(m.group(1))), value)
    if isinstance(value, list):
        return [_substitute(v, values, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _substitute(v, values, f"{path}.{k}") for k, v in value.items()}
    return value


def _typed(name: str, value: Any, like: Any) -> Any:
    """A ``-var`` string as the variable's type (its ``type``, else its default's): HCL converts
    it so."""
    if not isinstance(value, str) or like is None or isinstance(like, str):
        return value
    try:
        if isinstance(like, bool):
            if value not in ("true", "false"):
                raise ValueError(value)
            return value == "true"
        if isinstance(like, int | float):
            number = float(value)
            return int(number) if number.is_integer() and "." not in value else number
    except ValueError:
        kind = "bool" if isinstance(like, bool) else "number"
        raise JobFileError(f'Invalid value for variable "{name}": {value!r} is not a {kind}') from None
    return value


def _variables(doc: dict[str, Any], var_file: str, overrides: Mapping[str, str]) -> dict[str, Any]:
    """``var.<name>`` and ``local.<name>`` → value: declared defaults, then the variables file,
    then ``overrides``; locals (which may use variables) last."""
    declared: dict[str, Any] = {}
    types: dict[str, Any] = {}
    for name, body in _labelled(doc.pop("variable", None) or [], "variable"):
        declared[name] = body.get("default")
        types[name] = _SAMPLES.get(str(body.get("type", "")), declared[name])
    given = _unquote(_loads(var_file, "variables")) if var_file.strip() else {}
    given.update(overrides)
    if len(declared) + len(given) > MAX_VARIABLES:
        raise JobFileError(f"more than {MAX_VARIABLES} variables")
    for name in given:
        if name not in declared:
            raise JobFileError(
                f'Undefined variable: A variable named "{name}" was assigned a value, but not declared'
            )
    values = {**declared, **{k: _typed(k, v, types[k]) for k, v in given.items()}}
    missing = [n for n, v in values.items() if v is None]
    if missing:
        raise JobFileError(f'Unset variable "{missing[0]}": a value for it must be given')
    refs = {f"var.{k}": v for k, v in values.items()}
    for i, block in enumerate(doc.pop("locals", None) or []):
        for name, value in _block(block, f"locals[{i}]").items():
            refs[f"local.{name}"] = _substitute(value, refs, f"locals.{name}")
    return refs


def hcl_document(text: str, what: str = "HCL") -> dict[str, Any]:
    """A parsed HCL document as plain values (strings unquoted, blocks as lists of maps)."""
    doc: dict[str, Any] = _unquote(_loads(text, what))
    return doc


def parse_hcl(text: str, var_file: str = "", variables: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The API JSON job of an HCL job specification (``var_file``/``variables``: its inputs)."""
    doc = hcl_document(text)
    values = _variables(doc, var_file, variables or {})
    return hcl_to_api(_substitute(doc, values, "job") if values or "${" in text else doc)


def parse_json(text: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except ValueError as err:
        raise JobFileError(f"failed to parse JSON: {err}") from None
    if not isinstance(doc, dict):
        raise JobFileError("job file must be a JSON object")
    if "Job" in doc:
        extra = [k for k in doc if k != "Job"]
        if extra:
            raise JobFileError(f"{extra[0]}: unknown key")
        doc = doc["Job"]
    if not isinstance(doc, dict):
        raise JobFileError("Job: expected an object")
    check_keys(doc, JOB_SCHEMA, "Job")
    return doc


def parse_job_text(
    text: str, name: str = "", var_file: str = "", variables: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """JSON when it looks like JSON (or ``name`` ends in ``.json``), else HCL."""
    if name.endswith(".json") or text.lstrip().startswith("{"):
        return parse_json(text)
    return parse_hcl(text, var_file, variables)
