"""``cleanup`` touches only what its own MiCADO dir made: two MiCADO dirs against one cloud.

Dir A has a ready master, a create held at the ssh step (in a program of its own) and
there is an address other tooling marked; dir B's killed creates leave things of its
own. B's ``micado master cleanup`` and ``client.master.cleanup()`` remove B's and list
A's (and the foreign address) as not ours; A's create then finishes. ``--include-unowned``
removes others' resources only when old enough and confirmed. On the local OpenStack stack
and on the EC2 stack (moto).
"""

from __future__ import annotations

import json
import os
import pty
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from micado import MicadoClient
from micado.exceptions import InvalidArgument
from micado.testing.ec2.stack import EC2Stack

pytestmark = pytest.mark.stack

FOREIGN_NAME = "MiCADO-Master-0badf00d"

KILLED_CREATE = """
import json, os, signal, sys
from micado import MicadoClient
def progress(stage, message):
    if stage == "ssh" and message == "starting":
        os.kill(os.getpid(), signal.SIGKILL)
MicadoClient(launcher=sys.argv[2]).master.create(progress=progress, **json.loads(sys.argv[1]))
"""

HELD_CREATE = """
import json, os, sys, time
from micado import MicadoClient
held, release = sys.argv[3], sys.argv[4]
def progress(stage, message):
    if stage == "ssh" and message == "starting":
        open(held, "w").close()
        deadline = time.monotonic() + 300
        while not os.path.exists(release):
            if time.monotonic() > deadline:
                raise SystemExit("never released")
            time.sleep(0.05)
print(MicadoClient(launcher=sys.argv[2]).master.create(progress=progress, **json.loads(sys.argv[1])))
"""


def micado(env: dict[str, str], *args: str, stdin: Any = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "micado", *args], env=env, stdin=stdin, capture_output=True,
                          text=True, timeout=300)


def on_a_terminal(env: dict[str, str], answer: str, *args: str) -> tuple[int, str, str]:
    """Run ``micado ARGS`` with a terminal as standard input, typing ``answer``."""
    master, slave = pty.openpty()
    try:
        process = subprocess.Popen([sys.executable, "-m", "micado", *args], env=env, stdin=slave,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        os.close(slave)
        os.write(master, answer.encode())
        out, err = process.communicate(timeout=300)
    finally:
        os.close(master)
    return process.returncode, out, err


def second_dir(stack: Any, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """Another MiCADO dir on the same cloud (same credentials, its own store), and its environment."""
    other = tmp_path / "dir-b"
    other.mkdir(mode=0o700)
    shutil.copy(stack.micado_cli_dir / "credentials-cloud-api.yml", other / "credentials-cloud-api.yml")
    os.chmod(other / "credentials-cloud-api.yml", 0o600)
    return other, {**os.environ, **stack.environment, "MICADO_CLI_DIR": str(other)}


def store_id(micado_dir: Path) -> str:
    return (micado_dir / "store-id").read_text().strip()


def kill_a_create(stack: Any, env: dict[str, str], launcher: str) -> None:
    killed = subprocess.run([sys.executable, "-c", KILLED_CREATE, json.dumps(stack.create_kwargs), launcher],
                            env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr


# --- what each cloud holds, by the store identity in its marks ---------------------------------

def openstack_marked(stack: Any) -> dict[str, str | None]:
    """``{id: store identity or None}`` of every server and floating IP carrying micado-client's marks."""
    found: dict[str, str | None] = {}
    for server in stack.cloud.servers:
        if "micado-client-launch" in server["metadata"]:
            found[server["id"]] = server["metadata"].get("micado-client-store")
    for fip in stack.cloud.floating_ips:
        description = fip["description"]
        if description.startswith("allocated by micado-client for "):
            stores = [part[6:] for part in description.split("; ") if part.startswith("store=")]
            found[fip["id"]] = stores[0] if stores else None
    return found


def ec2_marked(stack: EC2Stack) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for resource, key in [(i, "InstanceId") for i in stack.cloud.live_instances()] + [
            (a, "AllocationId") for a in stack.cloud.addresses()]:
        tags = {tag["Key"]: tag["Value"] for tag in resource.get("Tags") or []}
        if "micado-client-launch" in tags or "micado-client-allocated-for" in tags:
            found[resource[key]] = tags.get("micado-client-store")
    return found


def foreign_openstack_address(stack: Any) -> str:
    """A floating IP marked as today's micado-client does, without a store identity (other tooling)."""
    return str(stack.cloud.add_floating_ip(description=f"allocated by micado-client for {FOREIGN_NAME}"))


def foreign_ec2_address(stack: EC2Stack) -> str:
    """An Elastic IP other tooling tagged ``micado-client-allocated-for`` (no store identity)."""
    import boto3

    ec2 = boto3.client("ec2", region_name=stack.cloud.region, endpoint_url=stack.cloud.moto_url,
                       aws_access_key_id="x", aws_secret_access_key="y")
    answer = ec2.allocate_address(Domain="vpc", TagSpecifications=[{
        "ResourceType": "elastic-ip", "Tags": [{"Key": "micado-client-allocated-for", "Value": FOREIGN_NAME}]}])
    return str(answer["AllocationId"])


# --- two MiCADO dirs --------------------------------------------------------------------------

def two_dirs_on_one_cloud(stack: Any, tmp_path: Path, launcher: str, marked: Any, foreign: str,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    env_a = {**os.environ, **stack.environment}
    dir_b, env_b = second_dir(stack, tmp_path)
    client_a = MicadoClient(launcher=launcher)
    ready = client_a.master.create(**stack.create_kwargs)
    held, release = tmp_path / "held", tmp_path / "release"
    creating = subprocess.Popen([sys.executable, "-c", HELD_CREATE, json.dumps(stack.create_kwargs), launcher,
                                 str(held), str(release)], env=env_a, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not held.exists():
            assert creating.poll() is None, creating.communicate()[1]
            assert time.monotonic() < deadline, "the create of dir A never reached the ssh step"
            time.sleep(0.05)
        store_a = store_id(stack.micado_cli_dir)
        of_a = {rid for rid, store in marked(stack).items() if store == store_a}
        assert ready in of_a and len(of_a) == 4  # two servers, two addresses
        not_ours = of_a | {foreign}

        # B's dry run, then B's cleanup through the command: B's own goes, A's is listed and stays
        kill_a_create(stack, env_b, launcher)
        store_b = store_id(dir_b)
        assert store_b != store_a
        of_b = {rid for rid, store in marked(stack).items() if store == store_b}
        assert len(of_b) == 2  # B's killed create: a server and its address
        dry = micado(env_b, "--json", "master", "cleanup", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        items = json.loads(dry.stdout)
        assert not any(item["removed"] for item in items)
        assert {i["id"] for i in items if not i["ours"] and i["left_alone"]} == not_ours
        assert {i["id"] for i in items if i["ours"] and i["kind"] in ("server", "address")} == of_b
        assert set(marked(stack)) >= of_a | of_b | {foreign}

        run = micado(env_b, "master", "cleanup")
        assert run.returncode == 0, run.stderr
        for rid in not_ours:
            (line,) = [line for line in run.stdout.splitlines() if f" {rid} " in line]
            assert "not ours, left alone" in line, run.stdout
        assert set(marked(stack)) == not_ours  # B's gone, all of A's and the foreign address still there

        # the same through client.master.cleanup() of dir B
        kill_a_create(stack, env_b, launcher)
        of_b = {rid for rid, store in marked(stack).items() if store == store_b}
        monkeypatch.setenv("MICADO_CLI_DIR", str(dir_b))
        found = MicadoClient(launcher=launcher).master.cleanup()
        monkeypatch.setenv("MICADO_CLI_DIR", str(stack.micado_cli_dir))
        assert {item.id for item in found if item.removed and item.kind in ("server", "address")} == of_b
        assert {item.id for item in found if not item.ours} == not_ours
        assert not any(item.removed for item in found if not item.ours)
        assert set(marked(stack)) == not_ours
    finally:
        release.touch()
        out, err = creating.communicate(timeout=300)
    assert creating.returncode == 0, err  # A's create was never disturbed: it finishes
    assert {m["state"] for m in client_a.master.list()} == {"ready"}
    assert len(client_a.master.list()) == 2

    # A's own cleanup removes nothing of A's live masters and leaves the foreign address alone
    found = client_a.master.cleanup()
    assert [(item.id, item.removed, item.ours) for item in found if item.kind in ("server", "address")] == [
        (foreign, False, False)]
    for master in client_a.master.list():
        client_a.master.destroy(master["id"])
    assert set(marked(stack)) == {foreign}


def test_another_dirs_cleanup_leaves_a_ready_master_a_running_create_and_foreign_addresses(
        micado_stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    foreign = foreign_openstack_address(micado_stack)
    two_dirs_on_one_cloud(micado_stack, tmp_path, "openstack", openstack_marked, foreign, monkeypatch)
    assert [f["id"] for f in micado_stack.cloud.floating_ips] == [foreign]  # never released
    assert micado_stack.cloud.servers == []


@pytest.fixture
def ec2_stack(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    with EC2Stack(tmp_path_factory.mktemp("ec2-stack")) as stack:
        for name, value in stack.environment.items():
            monkeypatch.setenv(name, value)
        yield stack


def test_another_dirs_cleanup_on_ec2_leaves_a_ready_master_a_running_create_and_tagged_elastic_ips(
        ec2_stack: EC2Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    foreign = foreign_ec2_address(ec2_stack)
    two_dirs_on_one_cloud(ec2_stack, tmp_path, "ec2", ec2_marked, foreign, monkeypatch)
    assert [a["AllocationId"] for a in ec2_stack.cloud.addresses()] == [foreign]  # never released
    assert ec2_stack.cloud.live_instances() == []


# --- --include-unowned --------------------------------------------------------------------

def _launch_as_another_dir(stack: Any, store: str | None) -> Any:
    """A server and floating IP launched as another MiCADO dir (``store``) would launch them."""
    from micado.config.credentials import load_credentials
    from micado.installer import ssh
    from micado.launcher.base import LaunchSpec, cloud_init_user_data
    from micado.launcher.openstack import OpenStackLauncher

    kwargs = stack.create_kwargs
    launcher = OpenStackLauncher.from_arguments(load_credentials("nova"), kwargs)
    spec = LaunchSpec(image=kwargs["image"], flavor=kwargs["flavor"], network=kwargs["network"],
                      keypair=kwargs["keypair"], security_group=kwargs["security_group"],
                      user_data=cloud_init_user_data(ssh.ensure_keypair().public_key), store_id=store)
    return launcher.launch(spec, timeout=60)


def _make_old(stack: Any, vm: Any, *, legacy: bool = False) -> None:
    """Move a launch's marks 3 hours back (or, ``legacy``, leave only the launch token, as earlier versions did)."""
    server = stack.cloud.server_snapshot(vm.server_id)
    metadata = dict(server["metadata"])
    (fip,) = [f for f in stack.cloud.floating_ips if f["id"] == vm.floating_ip_id]
    if legacy:
        stack.cloud.set_server_metadata(vm.server_id, {"micado-client-launch": metadata["micado-client-launch"]})
        stack.cloud.set_floating_ip_description(fip["id"], f"allocated by micado-client for {vm.name}")
        return
    old = (datetime.now(UTC) - timedelta(hours=3)).isoformat(timespec="seconds").replace("+00:00", "Z")
    stack.cloud.set_server_metadata(vm.server_id, {**metadata, "micado-client-launched": old})
    description = fip["description"].replace(f"launched={metadata['micado-client-launched']}", f"launched={old}")
    assert description != fip["description"]
    stack.cloud.set_floating_ip_description(fip["id"], description)


def test_include_unowned_removes_only_old_ones_and_only_when_confirmed(micado_stack) -> None:
    stack = micado_stack
    env = {**os.environ, **stack.environment}
    client = MicadoClient(launcher="openstack")
    ours = client.master.create(**stack.create_kwargs)  # a record, so cleanup looks at this cloud
    other = "c3" * 16
    old, young, legacy = (_launch_as_another_dir(stack, store) for store in (other, other, None))
    _make_old(stack, old)
    _make_old(stack, legacy, legacy=True)
    foreign = foreign_openstack_address(stack)
    everything = set(openstack_marked(stack))
    old_ones = {old.server_id, old.floating_ip_id}

    refused = micado(env, "master", "cleanup", "--include-unowned")  # no terminal, no --yes
    assert refused.returncode == 2, refused.stderr
    assert "--yes" in refused.stderr and "Traceback" not in refused.stderr
    for bad in (["--include-unowned", "--yes", "--min-age", "soon"], ["--min-age", "2h"]):
        wrong = micado(env, "master", "cleanup", *bad)
        assert wrong.returncode == 2, wrong.stderr
        assert "--min-age" in wrong.stderr
    assert set(openstack_marked(stack)) == everything

    dry = micado(env, "--json", "master", "cleanup", "--include-unowned", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    items = {item["id"]: item for item in json.loads(dry.stdout)}
    assert {rid for rid, item in items.items() if not item["ours"] and item["left_alone"] is None} == old_ones
    assert "less than the minimum age" in items[young.server_id]["left_alone"]
    assert "launch time is unknown" in items[legacy.server_id]["left_alone"]
    assert "launch time is unknown" in items[foreign]["left_alone"]
    assert ours not in items
    assert set(openstack_marked(stack)) == everything

    code, out, err = on_a_terminal(env, "n\n", "master", "cleanup", "--include-unowned")
    assert code == 1 and "cancelled" in err, err
    assert set(openstack_marked(stack)) == everything

    code, out, err = on_a_terminal(env, "y\n", "master", "cleanup", "--include-unowned")
    assert code == 0, err
    assert "NOT made by this MiCADO dir" in err
    assert set(openstack_marked(stack)) == everything - old_ones

    _make_old(stack, young)  # now 3 hours old: still younger than a day
    found = client.master.cleanup(include_unowned=True, min_age="1d")
    assert not any(item.removed for item in found)
    assert set(openstack_marked(stack)) == everything - old_ones
    with pytest.raises(InvalidArgument, match="min_age"):
        client.master.cleanup(include_unowned=True, min_age=-1)
    with pytest.raises(InvalidArgument, match="include_unowned"):
        client.master.cleanup(include_unowned="yes")  # type: ignore[arg-type]

    removed = micado(env, "master", "cleanup", "--include-unowned", "--yes", "--min-age", "7200")
    assert removed.returncode == 0, removed.stderr
    left = everything - old_ones - {young.server_id, young.floating_ip_id}
    assert set(openstack_marked(stack)) == left  # the legacy launch and the foreign address: never
    assert [m["state"] for m in client.master.list()] == ["ready"]  # ours, ready: never
    client.master.destroy()
    assert set(openstack_marked(stack)) == {legacy.server_id, legacy.floating_ip_id, foreign}
