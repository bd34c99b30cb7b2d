"""The published ansible-micado releases, deployed by ``master.create`` with the Ansible we ship
(ansible-core 2.19 on Python 3.11) and with the newest one allowed (ansible-core 2.21, on
Python 3.13 in the Debian trixie root that ``scripts/newest-ansible.sh`` makes: chrooted into
inside the same namespace, the checkout first on its path).

The releases are taken from ``$MICADO_RELEASES``, else ``../shared/ansible-micado/``
beside the project (reference data, not part of the repository); these tests are
skipped where neither holds them.

A real deployment cannot finish here (no systemd, no internet), so the play runs in
``--check`` mode, through the same ``create()`` as always (same working copy, command
line and environment; only ``--check`` is added through a test seam), against a VM of
the local stack. It must get as deep as ansible-core 2.15 gets with the unmodified
release: to the first task that needs systemd (0.12) or the network (0.9). Those tasks
were found once by running each release with ansible-core 2.15 the same way.

A release reaches for the network even in check mode (apt keys, downloads), so the runs
happen inside a network namespace that has only the loopback (``unshare --net``), with a
default route that stays on it (Ansible takes ``ansible_default_ipv4`` from it), and a
mount namespace in which ``/etc/os-release`` says Ubuntu (the releases check the OS).
Where no namespace can be made, the tests are skipped: they never run unisolated.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from micado.installer.playbooks import PlaybookSource
from paths import NEWEST_ANSIBLE_ROOT, RELEASES, ROOT


#: release -> (Ubuntu it supports, the task ansible-core 2.15 stops at in --check mode, its number)
DEPTH = {
    "0.12.6": ("22.04", "micado_master/build : Get Service Status", 27),
    "0.12.0": ("22.04", "micado_master/build : Get Service Status", 26),
    "0.9.1-rev1": ("20.04", "micado_master/build : (Docker) Adding APT key", 16),
}

#: Which Ansible runs the releases: ours (ansible-core 2.19 on Python 3.11) and the newest one
#: allowed (ansible-core 2.21 on Python 3.12+), in the Debian trixie root of scripts/newest-ansible.sh.
ANSIBLES = ["shipped", "newest"]

OS_RELEASE = """\
PRETTY_NAME="Ubuntu {version} LTS"
NAME="Ubuntu"
VERSION_ID="{version}"
VERSION="{version} LTS"
ID=ubuntu
ID_LIKE=debian
"""

# Runs inside the namespace: the local stack, then create() with the release tarball.
CREATE_IN_CHECK_MODE = textwrap.dedent("""
    import json, os, re, sys, tempfile
    from pathlib import Path
    from micado import MicadoClient
    from micado.exceptions import MicadoException
    from micado.testing.stack import LocalStack

    tarball, user, password, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    with tempfile.TemporaryDirectory(prefix="micado-release-") as base, LocalStack(Path(base)) as stack:
        os.environ.update(stack.environment)
        client = MicadoClient(launcher="openstack")
        client.master._ansible_args = tuple(args)  # the test seam: --check and friends
        tasks = []
        result = {}
        try:
            client.master.create(**stack.create_kwargs, playbook=tarball, micado_user=user,
                                 micado_password=password, install_timeout=900,
                                 progress=lambda stage, message: tasks.append(message) if stage == "ansible" else None)
        except MicadoException as error:
            result = {"error": type(error).__name__, "message": str(error), "task": getattr(error, "task", None),
                      "step": getattr(error, "step", None)}
        logs = sorted((stack.micado_cli_dir / "logs").glob("*.log"))
        results = re.compile(r": (ok|changed|skipped|failed|failed \\(ignored\\)|unreachable)$")
        starts = [task for task in tasks if not results.search(task)]  # each task's start, not its result
        result.update(log=logs[0].read_text() if logs else "", tasks=starts[2:],  # after "starting", "running"
                      leftovers=stack.cloud.leftovers(), records=client.master.list(),
                      work=[str(p) for p in (stack.micado_cli_dir / "work").glob("*")]
                      if (stack.micado_cli_dir / "work").exists() else [])
        print(json.dumps(result))
""")


# Runs inside the namespace: a master of the local stack (made by the stand-in release), recorded as if
# the real release had made it, then one day-2 play of that release on it, in --check mode.
DAY2_IN_CHECK_MODE = textwrap.dedent("""
    import json, os, re, sys, tempfile
    from pathlib import Path
    from micado import MicadoClient
    from micado.exceptions import MicadoException
    from micado.installer.playbooks import PlaybookSource, release_digest
    from micado.testing.stack import LocalStack

    tarball, operation = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory(prefix="micado-release-") as base, LocalStack(Path(base)) as stack:
        os.environ.update(stack.environment)
        client = MicadoClient(launcher="openstack")
        master_id = client.master.create(**stack.create_kwargs)
        record = client.master.store.get(master_id)
        tree = PlaybookSource(tarball).resolve()
        record.extra["release"] = {"source": str(Path(tarball).resolve()), "layout": tree.layout.name,
                                   "digest": release_digest(tree.root)}
        record.extra["settings"] = {"enable_occopus": True}  # 0.12.6 pushes credentials only for an orchestrator
        client.master.store.update(record)
        other = MicadoClient(launcher="openstack")  # another program, attached
        other.master.attach(master_id)
        other.master._ansible_args = ("--check",)  # the test seam
        tasks = []
        progress = lambda stage, message: tasks.append(message) if stage == "ansible" else None
        result = {}
        try:
            if operation == "update-auth":
                other.master.update_auth(progress=progress)
            else:
                other.master.edge_files(Path(base) / "edge", progress=progress)
        except MicadoException as error:
            result = {"error": type(error).__name__, "message": str(error), "task": getattr(error, "task", None)}
        logs = sorted((stack.micado_cli_dir / "logs").glob(f"*.{operation}-*.log"))
        results = re.compile(r": (ok|changed|skipped|failed|failed \\(ignored\\)|unreachable)$")
        starts = [task for task in tasks if not results.search(task) and not task.startswith(("running ", "playbook "))]
        result.update(log=logs[0].read_text() if logs else "", tasks=starts,
                      password=stack.cloud.login["password"],
                      work=[p.name for p in (stack.micado_cli_dir / "work").glob("*")]
                      if (stack.micado_cli_dir / "work").exists() else [])
        other.master.destroy()
        result["leftovers"] = stack.cloud.leftovers()
        print(json.dumps(result))
""")


def _releases() -> list[str]:
    return sorted(DEPTH, reverse=True)


def _tarball(release: str) -> Path:
    path = RELEASES / f"ansible-micado-{release}.tar.gz"
    if not path.is_file():
        pytest.skip(f"{path} is absent: put the real ansible-micado release tarballs in a folder and name it "
                    "in MICADO_RELEASES (they are not part of a clone)")
    return path


def _namespace_prefix(os_release: Path) -> list[str]:
    """The command that runs a program in a loopback-only network namespace that looks like Ubuntu."""
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("a loopback-only network namespace needs Linux, root, unshare and ip; "
                    "the real releases reach for the network, so they never run unisolated")
    setup = ('ip link set lo up && ip route add default dev lo src 127.0.0.1 && '
             f'mount --bind {os_release} /etc/os-release && exec "$@"')
    prefix = ["unshare", "--net", "--mount", "sh", "-c", setup, "micado-netns"]
    probe = subprocess.run([*prefix, "sh", "-c", "ip -4 route get 203.0.113.1; cat /etc/os-release"],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"no network namespace could be made here: {probe.stderr.strip()[:200]}")
    assert "dev lo" in probe.stdout
    assert 'NAME="Ubuntu"' in probe.stdout
    return prefix


def _python_in_namespace(os_release: Path, ansible: str) -> list[str]:
    """The Python that runs ``create()`` in the loopback-only namespace, with the Ansible named:
    ``shipped`` (this interpreter's) or ``newest`` (the Debian trixie root of
    ``scripts/newest-ansible.sh``: Python 3.13, ansible-core 2.21), the checkout first on its path."""
    if ansible == "shipped":
        return [*_namespace_prefix(os_release), sys.executable]
    root = NEWEST_ANSIBLE_ROOT
    if not (root / "opt" / "venv" / "bin" / "python").is_file():
        pytest.skip(f"no root with the newest Ansible at {root}: run `sh scripts/newest-ansible.sh` (as root) "
                    "to make it")
    views = [ROOT, RELEASES.resolve()]  # the checkout and the releases, at the same paths inside
    for view in views:
        (root / view.relative_to("/")).mkdir(parents=True, exist_ok=True)
    binds = " && ".join(f"mount --bind {view} {root}{view}" for view in views)
    inside = (f"mount --bind {root} {root} && mount --rbind /dev {root}/dev && mount -t proc proc {root}/proc && "
              f"{binds} && mount --bind {os_release} {root}/etc/os-release && exec chroot {root} env -i "
              f"HOME=/root LANG=C.UTF-8 PATH=/opt/venv/bin:/usr/sbin:/usr/bin:/sbin:/bin PYTHONPATH={ROOT} "
              '"$@"')
    prefix = _namespace_prefix(os_release)
    return [*prefix[:-4], "sh", "-c", prefix[-2].replace('exec "$@"', inside), "micado-netns",
            "/opt/venv/bin/python"]


def _create_in_check_mode(tmp_path: Path, release: str, user: str, password: str, *args: str,
                          ansible: str = "shipped") -> dict:
    tarball = _tarball(release)
    os_release = tmp_path / "os-release"
    os_release.write_text(OS_RELEASE.format(version=DEPTH[release][0]))
    command = [*_python_in_namespace(os_release, ansible), "-c", CREATE_IN_CHECK_MODE,
               str(tarball), user, password, *args]
    env = {**os.environ, "MICADO_CLI_DIR": str(tmp_path / "unused")}
    env.pop("MICADO_ANSIBLE_PLAYBOOK", None)  # the Ansible we ship
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # Whatever happened, create() left nothing: no server, no address, no record, no working copy.
    assert result["leftovers"] == {"servers": [], "attached_floating_ips": [], "allocated_floating_ips": []}
    assert result["records"] == []
    assert result["work"] == []
    return result


@pytest.mark.parametrize("release", _releases())
def test_each_release_is_accepted_before_launch_with_its_rewrites(micado_dir_for_releases, release: str) -> None:
    tree = PlaybookSource(_tarball(release)).resolve()
    assert tree.layout.name == {"0.12.6": "0.12", "0.12.0": "0.12", "0.9.1-rev1": "0.9"}[release]
    assert tree.plan.problems == ()
    assert tree.plan.rewrites  # each release needs some for ansible-core 2.19
    assert tree.layout.cloud_credentials.endswith("credentials-cloud-api.yml")
    for name in ("enable_occopus", "enable_terraform", "web_session_timeout", "grafana_admin_pwd"):
        assert name in tree.layout.settings


@pytest.mark.parametrize("ansible", ANSIBLES)
@pytest.mark.parametrize("release", _releases())
def test_a_check_run_reaches_the_depth_of_ansible_core_2_15(tmp_path: Path, release: str, ansible: str) -> None:
    _os, stop_task, number = DEPTH[release]
    result = _create_in_check_mode(tmp_path, release, "webuser", "Web-Pa55-word!", "--check", ansible=ansible)
    assert result["step"] == "ansible", result.get("message")
    assert result["task"] == stop_task, result["message"]
    assert result["tasks"][:number][-1] == stop_task
    assert len(result["tasks"]) == number
    assert "Web-Pa55-word!" not in result["log"]


@pytest.mark.parametrize(("release", "ansible"), [("0.12.6", "shipped"), ("0.12.0", "shipped"), ("0.12.6", "newest")])
def test_the_web_user_given_to_create_is_the_one_the_release_renders(tmp_path: Path, release: str,
                                                                      ansible: str) -> None:
    result = _create_in_check_mode(tmp_path, release, "researcher-7", "Chosen-Pa55word", "--check", "--diff",
                                   "--tags", "start", ansible=ansible)
    log = result["log"]
    rendered = log[log.index("provisioning.csv") - 400: log.index("provisioning.csv")]
    assert '+"researcher-7","' in rendered
    assert '"********"' in rendered
    assert '"admin"' not in rendered
    assert "Chosen-Pa55word" not in log


def _day2_in_check_mode(tmp_path: Path, release: str, operation: str, ansible: str = "shipped") -> dict:
    tarball = _tarball(release)
    os_release = tmp_path / "os-release"
    os_release.write_text(OS_RELEASE.format(version=DEPTH[release][0]))
    command = [*_python_in_namespace(os_release, ansible), "-c", DAY2_IN_CHECK_MODE, str(tarball), operation]
    env = {**os.environ, "MICADO_CLI_DIR": str(tmp_path / "unused")}
    env.pop("MICADO_ANSIBLE_PLAYBOOK", None)
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["work"] == []  # the day-2 working copy is gone, whatever happened
    assert result["leftovers"] == {"servers": [], "attached_floating_ips": [], "allocated_floating_ips": []}
    assert result["password"] not in result["log"]
    return result


#: release -> the task its update-auth tag stops at here: the first that needs Kubernetes (its Python
#: library and a cluster), after the credentials were read from the working copy.
UPDATE_AUTH_DEPTH = {
    "0.12.6": "micado_master/start : (Kubernetes) Store general cloud credentials in secret",
    "0.12.0": "micado_master/start : (Kubernetes) Store general cloud credentials in secret",
    "0.9.1-rev1": "micado_master/start : (Kubernetes) Ensure micado-system namespace exists",
}


# The newest Ansible runs the day-2 rewrite (the tag handed down) on the release that needs it.
@pytest.mark.parametrize(("release", "ansible"), [(release, "shipped") for release in _releases()]
                         + [("0.12.6", "newest")])
def test_update_auth_of_each_release_reads_the_credentials_and_reaches_kubernetes(tmp_path: Path, release: str,
                                                                                 ansible: str) -> None:
    result = _day2_in_check_mode(tmp_path, release, "update-auth", ansible)
    assert result.get("error") == "InstallError", json.dumps({k: result.get(k) for k in ("tasks", "message")})
    assert result["task"] == UPDATE_AUTH_DEPTH[release], result["message"]
    assert "micado_master/start : (Ansible) Load the cloud credentials from the playbook" in result["tasks"]
    assert "Failed to import the required Python library (kubernetes)" in result["message"]


def test_edge_files_of_0_12_6_run_agent_yml_to_its_kubernetes_check(tmp_path: Path) -> None:
    result = _day2_in_check_mode(tmp_path, "0.12.6", "edge-files")
    assert result["tasks"] == ["Gathering Facts", "(MiCADO) Check target is a micado-control plane"], result
    assert result["task"] == "(MiCADO) Check target is a micado-control plane"
    assert "Failed to import the required Python library (kubernetes)" in result["message"]


@pytest.fixture
def micado_dir_for_releases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "micado-cli"
    monkeypatch.setenv("MICADO_CLI_DIR", str(directory))
    monkeypatch.delenv("MICADO_ANSIBLE_PLAYBOOK", raising=False)
    return directory
