"""The specification files of ``namespace apply`` and ``node pool apply`` (Nomad's HCL forms)."""

from __future__ import annotations

import pytest

from nomadd.cli.namespace import _namespace_from_hcl, _pool_from_hcl
from nomadd.helper.jobspec import JobFileError, hcl_document


def test_namespace_spec() -> None:
    doc = hcl_document(
        'name = "api"\ndescription = "API"\n# note\ncapabilities {\n  disabled_task_drivers = ["raw_exec"]\n}\n'
        'meta {\n  owner = "me"\n}\n'
    )
    assert _namespace_from_hcl(doc) == {
        "Name": "api",
        "Description": "API",
        "Capabilities": {"DisabledTaskDrivers": ["raw_exec"]},
        "Meta": {"owner": "me"},
    }
    with pytest.raises(JobFileError, match="capabilities.drivers: unknown key"):
        _namespace_from_hcl(hcl_document('name = "x"\ncapabilities {\n  drivers = []\n}\n'))
    with pytest.raises(JobFileError, match="nam: unknown key"):
        _namespace_from_hcl(hcl_document('nam = "x"\n'))


def test_node_pool_spec() -> None:
    doc = hcl_document('node_pool "gpu" {\n  description = "GPUs"\n  meta {\n    kind = "a100"\n  }\n}\n')
    assert _pool_from_hcl(doc) == {"Name": "gpu", "Description": "GPUs", "Meta": {"kind": "a100"}}
    with pytest.raises(JobFileError, match="exactly one node_pool block"):
        _pool_from_hcl(hcl_document('node_pool "a" {}\nnode_pool "b" {}\n'))
    with pytest.raises(JobFileError, match="node_pool.colour: unknown key"):
        _pool_from_hcl(hcl_document('node_pool "a" {\n  colour = "red"\n}\n'))
