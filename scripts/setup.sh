#!/bin/sh
# Set up a development machine: a virtualenv in .venv with micado-client and its test,
# testing and docs extras, plus Debian's openssh-server (sshd for the local "VMs") when
# running as root and it is missing. Safe to run again.
set -eu
cd "$(dirname "$0")/.."
if [ ! -x /usr/sbin/sshd ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing openssh-server (for the local MiCADO stack's VMs)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server openssh-client >/dev/null
fi
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements.txt
.venv/bin/python -m pip install -q -e '.[test,testing,docs]'
echo "setup: ready (.venv)"
