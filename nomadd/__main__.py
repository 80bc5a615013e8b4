from __future__ import annotations

import sys

from nomadd.cli import main

sys.exit(main())
