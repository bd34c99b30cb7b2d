"""Use-cases 1 and 2 with ``launcher="ec2"``: moto's EC2 server through real boto3, local sshd VMs.

Every address the stack serves or connects to is in 127.0.0.0/8: the instances live in
a VPC on a loopback CIDR, the Elastic IPs moto gives come from 127.0.0.0/8, and the VM
bridge refuses anything else before it listens or connects
(:func:`micado.testing.vm.require_loopback`).
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from micado import MicadoClient
from micado.exceptions import InstallError, InvalidArgument, LaunchError
from micado.testing.ec2.stack import EC2Stack
from paths import ADTS

NOTHING = {"instances": [], "addresses": []}

pytestmark = pytest.mark.stack


@pytest.fixture
def ec2_stack(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[EC2Stack]:
    with EC2Stack(tmp_path_factory.mktemp("ec2-stack")) as stack:
        for name, value in stack.environment.items():
            monkeypatch.setenv(name, value)
        yield stack


@pytest.mark.parametrize("address", ["public", "private"])
def test_use_case_1_on_ec2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, address: str) -> None:
    with EC2Stack(tmp_path / "stack", address=address) as stack:
        for name, value in stack.environment.items():
            monkeypatch.setenv(name, value)
        client = MicadoClient(launcher="ec2")
        master_id = client.master.create(**stack.create_kwargs)
        assert master_id.startswith("i-")
        assert ipaddress.ip_address(client.master.ip).is_loopback
        (instance,) = stack.cloud.live_instances()
        tags = {tag["Key"]: tag["Value"] for tag in instance.get("Tags", [])}
        assert tags["Name"].startswith("MiCADO-Master-")
        assert tags["micado-client-launch"]
        if address == "public":  # the seeded subnet gives no public IP: an Elastic IP of ours
            (eip,) = stack.cloud.addresses()
            assert eip["PublicIp"] == client.master.ip
        else:
            assert stack.cloud.addresses() == []
            assert client.master.ip == instance["PrivateIpAddress"]
        assert stack.cloud.refused == []
        (listed,) = client.master.list()
        assert (listed["launcher"], listed["state"]) == ("ec2", "ready")

        app = client.applications.create(app_id="stressng", file=ADTS / "stressng_ec2_latest.yaml")
        assert [a.id for a in client.applications.list()] == ["stressng"]
        assert app.adaptors
        client.master.destroy()
        assert stack.leftovers() == NOTHING
        assert client.master.list() == []


CREATE = """
import json, sys
from micado import MicadoClient
client = MicadoClient(launcher="ec2")
master_id = client.master.create(**json.loads(sys.argv[1]))
print(master_id)
"""

ATTACH_AND_DESTROY = """
import sys
from micado import MicadoClient
client = MicadoClient(launcher="ec2")
client.master.attach(master_id=sys.argv[1])
print([app.id for app in client.applications.list()])
client.master.destroy()
"""


def test_use_case_2_on_ec2_from_another_program(ec2_stack: EC2Stack) -> None:
    env = {**os.environ, **ec2_stack.environment}
    created = subprocess.run([sys.executable, "-c", CREATE, json.dumps(ec2_stack.create_kwargs)], env=env,
                             capture_output=True, text=True, timeout=300)
    assert created.returncode == 0, created.stderr
    master_id = created.stdout.strip().splitlines()[-1]
    destroyed = subprocess.run([sys.executable, "-c", ATTACH_AND_DESTROY, master_id], env=env,
                               capture_output=True, text=True, timeout=300)
    assert destroyed.returncode == 0, destroyed.stderr
    assert ec2_stack.leftovers() == NOTHING


def test_openstack_arguments_are_refused_before_any_request(ec2_stack: EC2Stack) -> None:
    client = MicadoClient(launcher="ec2")
    with pytest.raises(InvalidArgument, match="auth_url is not an argument of the ec2 launcher"):
        client.master.create(**ec2_stack.create_kwargs, auth_url="https://keystone.example/v3")
    kwargs = {**ec2_stack.create_kwargs}
    del kwargs["region"]
    with pytest.raises(InvalidArgument, match="region"):
        client.master.create(**kwargs)
    assert ec2_stack.cloud.requests == []


def test_a_failure_after_launch_leaves_no_instance_and_no_elastic_ip(ec2_stack: EC2Stack) -> None:
    client = MicadoClient(launcher="ec2")
    with pytest.raises(InstallError) as caught:
        client.master.create(**{**ec2_stack.create_kwargs, "remote_cert_path": "var/lib/micado/missing.pem"})
    assert caught.value.step == "certificate"
    assert ec2_stack.leftovers() == NOTHING
    assert client.master.list() == []


def test_a_quota_at_launch_leaves_nothing(ec2_stack: EC2Stack) -> None:
    ec2_stack.cloud.faults.instance_limit = True
    client = MicadoClient(launcher="ec2")
    with pytest.raises(LaunchError) as caught:
        client.master.create(**ec2_stack.create_kwargs)
    assert caught.value.step == "launch"
    assert ec2_stack.leftovers() == NOTHING
    assert client.master.list() == []


KILLED = """
import json, os, signal, sys
from micado import MicadoClient
def progress(stage, message):
    if stage == "ssh" and message == "starting":
        os.kill(os.getpid(), signal.SIGKILL)
MicadoClient(launcher="ec2").master.create(progress=progress, **json.loads(sys.argv[1]))
"""


def test_cleanup_after_a_killed_create_covers_ec2(ec2_stack: EC2Stack) -> None:
    env = {**os.environ, **ec2_stack.environment}
    killed = subprocess.run([sys.executable, "-c", KILLED, json.dumps(ec2_stack.create_kwargs)], env=env,
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert ec2_stack.leftovers() != NOTHING
    client = MicadoClient(launcher="ec2")
    assert [m["state"] for m in client.master.list()] == ["creating"]
    removed = client.master.cleanup()
    assert {"server", "address", "record"} <= {item.kind for item in removed}
    assert all(item.removed for item in removed)
    assert ec2_stack.leftovers() == NOTHING
    assert client.master.list() == []


def test_destroy_when_the_instance_is_already_gone(ec2_stack: EC2Stack, caplog: pytest.LogCaptureFixture) -> None:
    import boto3

    client = MicadoClient(launcher="ec2")
    master_id = client.master.create(**ec2_stack.create_kwargs)
    ec2 = boto3.client("ec2", region_name=ec2_stack.cloud.region, endpoint_url=ec2_stack.cloud.moto_url,
                       aws_access_key_id="x", aws_secret_access_key="y")
    ec2.terminate_instances(InstanceIds=[master_id])
    client.master.destroy()
    assert client.master.list() == []
    assert ec2_stack.leftovers()["instances"] == []
