#!/bin/sh
# /usr/bin/nomadd: runs the agent on the packaged virtual environment /usr/lib/nomadd.
# -I (isolated): no PYTHON* environment variables, no user site-packages, no current
# directory on sys.path, so what runs is exactly what the package installed.
exec /usr/lib/nomadd/bin/python3 -I -m nomadd "$@"
