#!/bin/sh
# Install a real OpenStack Keystone (the PyPI package "keystone") into a virtualenv of its own,
# .keystone-venv (or $MICADO_KEYSTONE_VENV), for tests/emulators/test_real_keystone.py: the OpenStack
# emulator is tested behind it. Kept apart from .venv because Keystone pins its own versions of
# the OpenStack libraries. Nothing runs as a service: the tests start Keystone themselves, on
# 127.0.0.1 with an sqlite database in a temporary folder. Safe to run again.
set -eu
cd "$(dirname "$0")/.."
VENV="${MICADO_KEYSTONE_VENV:-.keystone-venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
# werkzeug serves Keystone's WSGI application (the package ships no server of its own).
"$VENV/bin/python" -m pip install -q 'keystone>=26' 'werkzeug>=3'
"$VENV/bin/python" -c "import keystone.server.wsgi, werkzeug.serving"
echo "keystone: ready ($VENV)"
