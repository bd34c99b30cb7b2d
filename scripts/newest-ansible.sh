#!/bin/sh
# A Debian trixie root (Python 3.13) holding the newest Ansible that micado-client allows
# (ansible 14, ansible-core 2.21; Python 3.11 tops out at ansible-core 2.19), in
# ~/.cache/micado-client/trixie (or $MICADO_NEWEST_ANSIBLE_ROOT), for tests/e2e/test_real_releases.py: the real ansible-micado
# releases run in check mode under both ansible-cores. The releases look for python3-apt,
# python3-packaging and pip on the master, as on an Ubuntu image; the local VMs are this root's
# own sshd. Needs root and debootstrap (installed when missing); elsewhere it says so and the
# tests skip. Safe to run again: a root whose marker matches this project's requirements is kept.
set -eu
cd "$(dirname "$0")/.."
ROOT="${MICADO_NEWEST_ANSIBLE_ROOT:-$HOME/.cache/micado-client/trixie}"
PACKAGES="python3,python3-venv,python3-apt,python3-packaging,python3-pip,openssh-server,openssh-client,sudo,iproute2"
if [ "$(id -u)" != 0 ]; then
    echo "newest-ansible: skipped (needs root for debootstrap and chroot): those release tests will skip"
    exit 0
fi
MARKER="$(cat requirements.txt pyproject.toml "$0" | sha256sum | cut -c1-16)"
if [ -x "$ROOT/opt/venv/bin/python" ] && [ "$(cat "$ROOT/.micado-ready" 2>/dev/null)" = "$MARKER" ]; then
    echo "newest-ansible: ready ($ROOT)"
    exit 0
fi
if ! command -v debootstrap >/dev/null; then
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq debootstrap >/dev/null
fi
rm -rf "$ROOT"
debootstrap --variant=minbase --include="$PACKAGES" trixie "$ROOT" "${MICADO_DEBIAN_MIRROR:-http://deb.debian.org/debian}" >/dev/null
# pip inside reaches the same package index as here: the same resolver, pip settings and CA bundle.
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$ROOT/etc/pip.conf"
CERT="${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}"
if [ -f "$CERT" ]; then mkdir -p "$ROOT$(dirname "$CERT")" && cp "$CERT" "$ROOT$CERT"; fi
mkdir -p "$ROOT/run/sshd" "$ROOT/tmp/micado-client"
chroot "$ROOT" python3 -m venv /opt/venv
# The project is installed from a copy of this checkout (its dependencies, from its own
# requirements and extras); the tests put the checkout itself first on the path.
tar -C "$PWD" --exclude=./.git --exclude=./.venv --exclude=./.keystone-venv --exclude='*.egg-info' -cf - . \
    | tar -C "$ROOT/tmp/micado-client" -xf -
# (pip settings pointing at folders of this machine mean nothing inside)
chroot "$ROOT" env -u PIP_FIND_LINKS PIP_CERT="$CERT" sh -c '/opt/venv/bin/python -m pip install -qq --upgrade pip \
    && /opt/venv/bin/python -m pip install -qq -r /tmp/micado-client/requirements.txt \
    && /opt/venv/bin/python -m pip install -qq "/tmp/micado-client[testing]"'
rm -rf "$ROOT/tmp/micado-client"
# Ubuntu's images have software-properties-common, which Debian trixie no longer packages; the
# 0.9 release installs it (apt, state present), so an empty package of that name makes this
# root's apt answer as an Ubuntu image's does.
mkdir -p "$ROOT/tmp/spc/DEBIAN"
printf 'Package: software-properties-common\nVersion: 0.0-micado\nArchitecture: all\nMaintainer: micado-client tests <root@localhost>\nDescription: empty stand-in for the Ubuntu package\n' \
    > "$ROOT/tmp/spc/DEBIAN/control"
chroot "$ROOT" sh -c 'dpkg-deb --build /tmp/spc /tmp/spc.deb >/dev/null && dpkg -i /tmp/spc.deb >/dev/null && rm -rf /tmp/spc /tmp/spc.deb'
chroot "$ROOT" /opt/venv/bin/python -c "import ansible.release, sys; print('newest-ansible: Python', sys.version.split()[0], 'ansible-core', ansible.release.__version__)"
echo "$MARKER" > "$ROOT/.micado-ready"
echo "newest-ansible: ready ($ROOT)"
