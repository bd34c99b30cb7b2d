"""ansible-micado-shaped playbooks that deploy the TOSCA Submitter emulator on a local VM.

Three source trees mirror the three shapes of the real releases, so the installer's
shape detection, inputs and rewrites are exercised for each:

* ``v0.9/``: ``micado-master.yml`` at the top, its variables as a list of one-key
  mappings in play ``vars:`` (host ``micado-target``), old-style ``include:`` of the
  pre-tasks, the web credentials loaded with ``include_vars`` when the file exists;
* ``v0.10/``: ``micado.yml`` at the top with ``host_vars/micado.yml``,
  ``group_vars/all.yaml`` and ``credentials/`` beside it;
* ``v0.12/``: the same under ``playbook/project/``, with ``playbook/inventory/``, and
  :data:`AGENT_PLAYBOOK` (``agent.yml``) with its role ``micado_agent`` beside it.

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
VM's environment (pre-tasks tagged ``always``: they run whatever ``--tags`` says). A
full run writes, under that root: a self-signed certificate for the VM's address
(:data:`CERT_FILE`; with ``security.tls.provision_method: user-supplied``, as the
releases' proxy does, the given ``security.tls.cert`` there, mode 0644, and its
``key`` in :data:`KEY_FILE`, mode 0600, both only where none is yet), the settings it got (:data:`SETTINGS_FILE`,
:data:`MORE_SETTINGS_FILE`, the Grafana password in :data:`GRAFANA_PASSWORD_FILE`),
the cloud credentials (:data:`CLOUD_CREDENTIALS_FILE`: the YAML of what
``include_vars`` read, as the releases store it for the master; the GCE service
account's JSON in :data:`GCE_CREDENTIALS_FILE`), the registry
credentials (0.12: :data:`REGISTRIES_FILE`, copied as it is; 0.9/0.10:
:data:`DOCKER_REGISTRY_FILE`, from ``include_vars`` of ``DOCKER_REPO/USER/PASS``), the
web login written through a template (:data:`WEB_LOGIN_FILE`), and what Kubernetes
leaves on a master (:mod:`micado.testing.playbook.cluster`): the admin's kubeconfig
(:data:`KUBECONFIG_FILES`: K3s's :data:`K3S_KUBECONFIG_FILE` with the API on
``https://127.0.0.1:6443`` for 0.12, kubeadm's :data:`KUBEADM_KUBECONFIG_FILE` with the
API on ``https://<ansible_host>:6443`` for 0.9/0.10; the master's certificate as its
certificate authority, a random bearer token) and, 0.12 only, the K3s join token
(:data:`NODE_TOKEN_FILE`, kept across runs). All of these are 0600 but the settings.
It then starts ``python -m micado.testing.submitter`` detached with the web user and
password of ``security``, and waits for its ready file (:data:`READY_FILE`).

Day-2 operations, shaped as the releases have them:

* ``--tags update-auth``: the pre-tasks that look for the credential files on the
  controller are tagged ``start`` and ``update-auth`` (0.9: in the play's
  ``pre_tasks``; 0.10/0.12: ``pre-task/25-check-credentials.yml``) and the role
  includes ``load-auth.yml`` tagged ``update-auth``, so such a run reads the cloud
  credentials file again, rewrites :data:`CLOUD_CREDENTIALS_FILE` and runs nothing else
  of the role. The registry credentials are not pushed again: no release does that
  under ``update-auth``. As in 0.11 and later, the credentials are pushed only with a
  cloud orchestrator enabled (``enable_occopus`` or ``enable_terraform``). Every push
  (full run or not) appends one JSON line to :data:`UPDATE_AUTH_LOG`: ``time`` (UTC),
  ``tags`` (``ansible_run_tags``: ``["all"]`` for a full run) and ``files`` (the
  credential files pushed, as the release names them; never their content).
* ``agent.yml`` (0.12), run in the same folder with an inventory that adds an
  ``agents`` group: play *Gather server info* (host ``micado``, every tag) checks that
  the master runs (its ready file and API port) and reads the join token and, if
  there, the master's registries file; play *Write edge registry and script to
  localhost* (only with ``--tags edge-files``) writes :data:`EDGE_SCRIPT_FILE` (0755: a
  bash script with the K3s agent install line, ``--server "https://<master
  ansible_host>:6443"``, ``--token "<token>"`` and the ``YOUR_UNIQUE_EDGE_HOSTNAME`` /
  ``YOUR_EDGE_PUBLIC_IP`` placeholders) and :data:`EDGE_REGISTRIES_FILE` (0600, when the
  master has a registries file) to ``../../../`` of the run folder, as the release
  does (in the installer's working copy, ``<work>/ansible-micado/playbook/project``,
  that is ``<work>/``); play *Join agents* (hosts ``agents``) writes on each agent VM
  :data:`AGENT_FILE` (0600: ``server``, ``node_name`` = the inventory name in lower
  case, ``token``, ``external_ip`` = its ``ansible_host``) and a copy of the master's
  registries file at :data:`REGISTRIES_FILE`. Tasks handling the token have
  ``no_log``.

Each tree also carries the bundled example ADTs (``micado/testing/examples/``) as a
release keeps its demos, ``demos/<name>/<name>_<cloud>.yaml`` (:mod:`micado.demos`).

:func:`build_tarball` packs a tree like a release tarball (top folder
``ansible-micado-<version>/``) for the stack, the demo and the tests.
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
from pathlib import Path

__all__ = ["LAYOUTS", "VERSIONS", "READY_FILE", "CERT_FILE", "SETTINGS_FILE", "MORE_SETTINGS_FILE",
           "GRAFANA_PASSWORD_FILE", "CLOUD_CREDENTIALS_FILE",
           "GCE_CREDENTIALS_FILE", "KEY_FILE", "REGISTRIES_FILE", "DOCKER_REGISTRY_FILE",
           "WEB_LOGIN_FILE", "UPDATE_AUTH_LOG", "NODE_TOKEN_FILE", "K3S_KUBECONFIG_FILE", "KUBEADM_KUBECONFIG_FILE",
           "KUBECONFIG_FILES", "AGENT_PLAYBOOK", "AGENT_FILE", "EDGE_SCRIPT_FILE", "EDGE_REGISTRIES_FILE",
           "build_tree", "build_tarball"]

HERE = Path(__file__).parent
#: The example ADTs, which each stand-in release carries as its demos (``demos/``).
EXAMPLES = HERE.parent / "examples"

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
#: The GCE service-account JSON, as the releases put it in their ``gce-credentials`` secret.
GCE_CREDENTIALS_FILE = "var/lib/micado/gce-accounts.json"
REGISTRIES_FILE = "etc/rancher/k3s/registries.yaml"
DOCKER_REGISTRY_FILE = "var/lib/micado/docker-registry.json"
WEB_LOGIN_FILE = "var/lib/micado/web-login.json"
#: Where the play leaves the emulator's ready file and the certificate, under the VM root.
READY_FILE = "var/lib/micado/submitter.json"
CERT_FILE = "var/lib/micado/zorp/config/ssl.pem"
#: The key of a user-supplied certificate (``security.tls.provision_method: user-supplied``), as
#: the releases' proxy writes it beside :data:`CERT_FILE` (which then holds the certificate only).
KEY_FILE = "var/lib/micado/zorp/config/ssl.key"
#: One JSON line per credentials push (full run or ``--tags update-auth``), under the VM root.
UPDATE_AUTH_LOG = "var/lib/micado/update-auth.log"
#: The K3s join token (0.12 layout), under the VM root.
NODE_TOKEN_FILE = "var/lib/rancher/k3s/server/node-token"
#: The cluster admin's kubeconfig, under the VM root: K3s's (0.12), kubeadm's (0.9, 0.10).
K3S_KUBECONFIG_FILE = "etc/rancher/k3s/k3s.yaml"
KUBEADM_KUBECONFIG_FILE = "etc/kubernetes/admin.conf"
KUBECONFIG_FILES: dict[str, str] = {"0.9": KUBEADM_KUBECONFIG_FILE, "0.10": KUBEADM_KUBECONFIG_FILE,
                                    "0.12": K3S_KUBECONFIG_FILE}
#: The 0.12 layout's agent playbook, beside ``micado.yml``.
AGENT_PLAYBOOK = "agent.yml"
#: What ``agent.yml`` records on each agent VM, under its root.
AGENT_FILE = "var/lib/micado/agent.json"
#: What ``agent.yml --tags edge-files`` writes three folders above its run folder.
EDGE_SCRIPT_FILE = "connect_edge.sh"
EDGE_REGISTRIES_FILE = "registries.yaml"

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
    # A layout may bring roles of its own (0.12: micado_agent); the shared ones join them.
    shutil.copytree(HERE / "roles", dest / project / "roles", dirs_exist_ok=True)
    shutil.copytree(HERE / "pre-task", dest / project / "pre-task")
    _add_demos(dest / "demos")
    if fail:
        defaults = dest / project / "roles" / _FAIL_DEFAULTS
        text = defaults.read_text(encoding="utf-8")
        defaults.write_text(text.replace("micado_emulator_fail: false", "micado_emulator_fail: true"))
    return dest


def _add_demos(folder: Path) -> None:
    """The bundled example ADTs as a release keeps its demos: ``demos/<name>/<name>_<cloud>.yaml``."""
    for example in sorted(EXAMPLES.glob("*.yaml")):
        name, cloud = example.stem.split("_")[:2]  # stressng_nova.yaml, nginx_ec2_latest.yaml
        (folder / name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(example, folder / name / f"{name}_{cloud}.yaml")


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
