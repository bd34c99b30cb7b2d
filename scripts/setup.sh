#!/bin/sh
# Set up a development machine: a virtualenv in .venv with micado-client and its test,
# testing and docs extras, plus the Debian packages below when running as root and they
# are missing. Safe to run again.
set -eu
cd "$(dirname "$0")/.."
# Debian packages the tests need: sshd for the local "VMs"; sudo, ip and unshare for
# running the real ansible-micado releases (become: sudo) in a loopback-only namespace.
missing=""
[ -x /usr/sbin/sshd ] || missing="$missing openssh-server openssh-client"
command -v sudo >/dev/null || missing="$missing sudo"
command -v ip >/dev/null || missing="$missing iproute2"
command -v unshare >/dev/null || missing="$missing util-linux"
if [ -n "$missing" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing$missing"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq $missing >/dev/null
fi
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements.txt
.venv/bin/python -m pip install -q -e '.[test,testing,docs]'
echo "setup: ready (.venv)"
