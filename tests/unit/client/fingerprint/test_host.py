from __future__ import annotations

import asyncio

import pytest

from nomadd.client.fingerprint import host
from nomadd.client.fingerprint.base import FingerprintConfig, FingerprintRequest


def run() -> dict[str, str]:
    req = FingerprintRequest(config=FingerprintConfig())
    return dict(asyncio.run(host.HostFingerprint().fingerprint(req)).attributes)


def test_parse_os_release_quotes_and_comments() -> None:
    text = "# c\nID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME='Debian 12'\nbad line\n"
    assert host.parse_os_release(text) == {
        "ID": "debian",
        "VERSION_ID": "12",
        "PRETTY_NAME": "Debian 12",
    }


def test_os_release_read(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "os-release"  # type: ignore[operator]
    f.write_text('ID=ubuntu\nVERSION_ID="24.04"\n')
    monkeypatch.setattr(host, "OS_RELEASE_PATHS", (str(tmp_path / "none"), str(f)))  # type: ignore[operator]
    attrs = run()
    assert attrs["os.name"] == "ubuntu"
    assert attrs["os.version"] == "24.04"
    assert attrs["kernel.name"] == "linux"
    assert attrs["kernel.version"]
    assert attrs["kernel.arch"]
    assert attrs["unique.hostname"]


def test_missing_os_release_degrades(bare_host: object) -> None:
    attrs = run()
    assert attrs["os.name"] == "linux"
    assert "os.version" not in attrs
