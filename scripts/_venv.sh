# Sourced by the scripts: makes .venv/ at the repo root from the hash-locked requirements and
# reuses it while it is current (same lock file, same Python). Sets ROOT and PY.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
LOCK="$ROOT/requirements/dev.lock"
# The interpreter: NOMADD_PYTHON if set, else the one the package runs on (bookworm's
# /usr/bin/python3, docs/packaging.md) when it can make a venv (python3-venv: ensurepip), else
# python3 on PATH. Tests and benchmarks then measure what ships: a pyenv build without PGO/LTO
# ran the C1M placements about 5 % slower (docs/contributing/raft.md, "Where it stands").
if [ -n "${NOMADD_PYTHON:-}" ]; then
    BASE_PY=$NOMADD_PYTHON
elif [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import ensurepip, sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    BASE_PY=/usr/bin/python3
else
    BASE_PY=python3
fi
want="$(sha256sum "$LOCK" | cut -d' ' -f1) $("$BASE_PY" -c 'import sys; print(sys.version.split()[0])')"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.nomadd-stamp" 2>/dev/null)" != "$want" ]; then
    echo "==> creating $VENV from requirements/dev.lock" >&2
    rm -rf "$VENV"
    "$BASE_PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        --require-hashes --no-deps -r "$LOCK" 2>&1 | { grep -v "^WARNING: Location 'file:" || true; } >&2
    echo "$want" > "$VENV/.nomadd-stamp"
fi
# The project itself runs from the work tree: a .pth entry puts it on the venv's path and a small
# wrapper gives the `nomadd` command, so edits need no reinstall.
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
[ "$(cat "$site/nomadd-worktree.pth" 2>/dev/null)" = "$ROOT" ] || echo "$ROOT" > "$site/nomadd-worktree.pth"
if [ ! -x "$VENV/bin/nomadd" ]; then
    printf '#!/bin/sh\nexec "%s/bin/python" -m nomadd "$@"\n' "$VENV" > "$VENV/bin/nomadd"
    chmod +x "$VENV/bin/nomadd"
fi
PY="$VENV/bin/python"
export PATH="$VENV/bin:$PATH"
