"""ansible-micado-shaped playbooks that deploy the TOSCA Submitter emulator on a local VM.

Three source trees mirror the three shapes of the real releases, so the installer's
shape detection, inputs and rewrites are exercised for each:

* ``v0.9/``: ``micado-master.yml`` at the top, its variables as a list of one-key
  mappings in play ``vars:`` (host ``micado-target``), old-style ``include:`` of the
  pre-tasks, the web credentials loaded with ``include_vars`` when the file exists;
* ``v0.10/``: ``micado.yml`` at the top with ``host_vars/micado.yml``,
  ``group_vars/all.yaml`` and ``credentials/`` beside it;
* ``v0.12/``: the same under ``playbook/project/``, with ``playbook/inventory/``.

The constructs of the real releases that matter to the client are reproduced in our
own words: ``security`` read as *text* through ``lookup("file", ...)`` (its users fall
back to ``admin``/``admin`` unless the installer hands over the mapping), pre-tasks
included from ``pre-task/`` with a string tested bare in a ``when`` and template
delimiters inside ``assert`` expressions, the handlers ``include:``, old-style
``include:`` in the role, switches tested bare (``when: enable_occopus``), and the
certificate at the master's path.

The shared ``roles/`` and ``pre-task/`` folders are copied in by :func:`build_tree`.
Run by real ``ansible-playbook`` over SSH against a VM of :mod:`micado.testing.vm`, the
play reads ``MICADO_VM_ROOT``, ``MICADO_VM_PYTHON`` and ``MICADO_VM_API_PORT`` from the
VM's environment, writes a self-signed certificate for the VM's address to
``<root>/var/lib/micado/zorp/config/ssl.pem``, records the settings it got in
``<root>/var/lib/micado/settings.json`` and ``more-settings.json`` (and the Grafana
password, 0600), what it got as the cloud credentials (``auth_data.yaml``: the YAML of
what ``include_vars`` read, as the releases store it for the master), the registry
credentials (0.12: ``etc/rancher/k3s/registries.yaml``, copied as it is; 0.9/0.10:
``docker-registry.json``, from ``include_vars`` of ``DOCKER_REPO/USER/PASS``) and the web
login written through a template (``web-login.json``), all 0600, starts
``python -m micado.testing.submitter`` detached with the web user and password of
``security``, and waits for its ready file ``<root>/var/lib/micado/submitter.json``.

:func:`build_tarball` packs a tree like a release tarball (top folder
``ansible-micado-<version>/``) for the stack, the demo and the tests.
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from pathlib import Path

__all__ = ["LAYOUTS", "VERSIONS", "READY_FILE", "CERT_FILE", "SETTINGS_FILE", "MORE_SETTINGS_FILE",
           "GRAFANA_PASSWORD_FILE", "CLOUD_CREDENTIALS_FILE", "REGISTRIES_FILE", "DOCKER_REGISTRY_FILE",
           "WEB_LOGIN_FILE", "build_tree", "build_tarball"]

HERE = Path(__file__).parent

#: Source folder and the folder the shared ``roles/`` and ``pre-task/`` go to, per layout.
LAYOUTS: dict[str, tuple[str, str]] = {
    "0.9": ("v0.9", "."),
    "0.10": ("v0.10", "."),
    "0.12": ("v0.12", "playbook/project"),
}
#: The release each layout imitates (names the tarball's top folder).
VERSIONS: dict[str, str] = {"0.9": "0.9.1-rev1", "0.10": "0.10.0", "0.12": "0.12.6"}
#: Where each stand-in release keeps its settings (relative to the tree root).
SETTINGS_FILE = "var/lib/micado/settings.json"
GRAFANA_PASSWORD_FILE = "var/lib/micado/grafana.password"
#: What the play records on the VM of its other inputs, under the VM root (see above).
MORE_SETTINGS_FILE = "var/lib/micado/more-settings.json"
CLOUD_CREDENTIALS_FILE = "var/lib/micado/auth_data.yaml"
REGISTRIES_FILE = "etc/rancher/k3s/registries.yaml"
DOCKER_REGISTRY_FILE = "var/lib/micado/docker-registry.json"
WEB_LOGIN_FILE = "var/lib/micado/web-login.json"
#: Where the play leaves the emulator's ready file and the certificate, under the VM root.
READY_FILE = "var/lib/micado/submitter.json"
CERT_FILE = "var/lib/micado/zorp/config/ssl.pem"

_FAIL_DEFAULTS = "micado_master/start/defaults/main.yml"


def _check_layout(layout: str) -> tuple[str, str]:
    key = layout[1:] if layout.startswith("v") else layout
    if key not in LAYOUTS:
        raise ValueError(f"unknown playbook layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    return LAYOUTS[key]


def build_tree(layout: str, dest: Path, *, fail: bool = False) -> Path:
    """Assemble the playbook folder of one layout at ``dest``.

    Args:
        layout: ``"0.9"``, ``"0.10"`` or ``"0.12"`` (a leading ``v`` is accepted).
        dest: the folder to create; it must not exist.
        fail: make the play fail at its task ``(Emulator) Injected failure``
            (before it touches the VM), to test failure handling.

    Returns:
        ``dest``, a folder the installer accepts as ``playbook=``.

    Raises:
        ValueError: the layout is unknown.
        FileExistsError: ``dest`` exists.
    """
    source, project = _check_layout(layout)
    dest = Path(dest)
    shutil.copytree(HERE / source, dest)
    shutil.copytree(HERE / "roles", dest / project / "roles")
    shutil.copytree(HERE / "pre-task", dest / project / "pre-task")
    if fail:
        defaults = dest / project / "roles" / _FAIL_DEFAULTS
        text = defaults.read_text(encoding="utf-8")
        defaults.write_text(text.replace("micado_emulator_fail: false", "micado_emulator_fail: true"))
    return dest


def build_tarball(layout: str, dest: Path, *, version: str | None = None, fail: bool = False) -> Path:
    """Pack the playbooks of one layout like an ansible-micado release tarball.

    Args:
        layout: ``"0.9"``, ``"0.10"`` or ``"0.12"`` (a leading ``v`` is accepted).
        dest: the ``.tar.gz`` file to write, or an existing folder to write
            ``ansible-micado-<version>.tar.gz`` into.
        version: the version in the top folder's name; default :data:`VERSIONS`.
        fail: see :func:`build_tree`.

    Returns:
        The tarball written.

    Raises:
        ValueError: the layout is unknown.
    """
    _check_layout(layout)
    key = layout[1:] if layout.startswith("v") else layout
    version = version or VERSIONS[key]
    top = f"ansible-micado-{version}"
    dest = Path(dest)
    target = dest / f"{top}.tar.gz" if dest.is_dir() else dest
    with tempfile.TemporaryDirectory(prefix="micado-playbook-") as scratch:
        tree = build_tree(layout, Path(scratch) / top, fail=fail)
        with tarfile.open(target, "w:gz") as archive:
            archive.add(tree, arcname=top, filter=_normalise)
    return target


def _normalise(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """Release-like members: no local user names or ids."""
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    return member
