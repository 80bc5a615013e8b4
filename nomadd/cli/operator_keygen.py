"""``nomadd operator keygen``: a new base64 32-byte key for ``server.encrypt``."""

from __future__ import annotations

import base64
import os


def run(args: list[str]) -> int:
    print(base64.b64encode(os.urandom(32)).decode())
    return 0
