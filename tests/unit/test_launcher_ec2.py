"""The EC2 launcher driven through real boto3 against moto's EC2 server (behind our fault proxy).

Every test checks what the cloud shows afterwards: after a failure, no instance
that is not terminated and no Elastic IP.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import subprocess
import sys
import time

import pytest

from micado.config.credentials import EC2Auth
from micado.exceptions import InvalidArgument, LaunchError, MicadoTimeout
from micado.launcher.base import CREATOR_TAG, LAUNCHED_TAG, LaunchedVM, LaunchSpec
from micado.launcher.ec2 import ALLOCATED_TAG, LAUNCH_TAG, STORE_TAG, EC2Launcher
from micado.testing.ec2 import EC2Emulator
from micado.testing.vm import free_port, require_loopback
from paths import DOCS

USER_DATA = "#cloud-config\nssh_authorized_keys:\n  - \"ecdsa-sha2-nistp256 AAAAE2VjZHNh test\"\n"


@pytest.fixture(scope="module")
def shared_cloud(tmp_path_factory: pytest.TempPathFactory):
    """One emulator for the module (moto takes seconds to start); each test leaves nothing behind."""
    with EC2Emulator(log_dir=tmp_path_factory.mktemp("moto")) as cloud:
        yield cloud


@pytest.fixture
def ec2_cloud(shared_cloud: EC2Emulator):
    """The module's emulator with an empty request log and no fault switched on."""
    shared_cloud.reset()
    assert_nothing_left(shared_cloud)
    yield shared_cloud
    shared_cloud.reset()


def launcher(cloud: EC2Emulator, **kwargs) -> EC2Launcher:
    options = {"region": cloud.region, "endpoint_url": cloud.endpoint_url, "request_timeout": 5.0,
               "connect_timeout": 2.0, **kwargs}
    return EC2Launcher(cloud.credentials, **options)


def spec(cloud: EC2Emulator, **changes) -> LaunchSpec:
    seeded = cloud.seeded
    fields = {"image": seeded["image"], "flavor": seeded["flavor"], "network": seeded["network"],
              "keypair": seeded["keypair"], "security_group": seeded["security_group"], "user_data": USER_DATA}
    return LaunchSpec(**{**fields, **changes})


def assert_nothing_left(cloud: EC2Emulator) -> None:
    assert cloud.live_instances() == []
    assert cloud.addresses() == []


def tags(resource: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


# --- the happy paths ------------------------------------------------------------------------


def test_launch_allocates_a_tagged_elastic_ip_and_delete_releases_it(ec2_cloud: EC2Emulator) -> None:
    events: list[tuple[str, str]] = []
    the_spec = dataclasses.replace(spec(ec2_cloud), store_id="b2" * 16)
    with launcher(ec2_cloud) as ec2:
        vm = ec2.launch(the_spec, progress=lambda stage, message: events.append((stage, message)))
        assert vm.launcher == "ec2"
        assert vm.name == the_spec.name
        assert vm.floating_ip_allocated
        assert ipaddress.ip_address(vm.ip).is_loopback
        assert vm.private_ip.startswith("127.64.1.")
        instance = ec2_cloud.instance(vm.server_id)
        assert instance["State"]["Name"] == "running"
        assert instance["InstanceType"] == "t3.medium"
        marks = {"Name": the_spec.name, LAUNCH_TAG: the_spec.launch_token, STORE_TAG: "b2" * 16}
        instance_tags = tags(instance)
        assert instance_tags.pop(LAUNCHED_TAG).endswith("Z") and instance_tags.pop(CREATOR_TAG)
        assert instance_tags == marks
        [address] = ec2_cloud.addresses()
        assert address["AllocationId"] == vm.floating_ip_id
        assert address["InstanceId"] == vm.server_id
        address_tags = tags(address)
        assert address_tags.pop(LAUNCHED_TAG) and address_tags.pop(CREATOR_TAG)
        assert address_tags == {**marks, ALLOCATED_TAG: the_spec.name}
        assert {(m.kind, m.store, m.token) for m in ec2.marked()} == {
            ("server", "b2" * 16, the_spec.launch_token), ("address", "b2" * 16, the_spec.launch_token)}
        assert ec2.state(vm.server_id) == "running"
        assert any("allocated Elastic IP" in message for _, message in events)
        assert LaunchedVM.from_dict(vm.to_dict()) == vm

        removal = ec2.delete(vm)
    assert removal.server_found
    assert removal.floating_ip_released
    assert removal.warnings == []
    assert_nothing_left(ec2_cloud)
    assert ec2_cloud.instance(vm.server_id)["State"]["Name"] == "terminated"


def test_the_subnet_s_public_ip_is_used_without_an_elastic_ip(ec2_cloud: EC2Emulator) -> None:
    # moto's default VPC gives public IPs in 54.214.0.0/16: returned, never connected to.
    with launcher(ec2_cloud) as ec2:
        vm = ec2.launch(spec(ec2_cloud, network="", security_group="default"))
        assert vm.floating_ip_id is None
        assert not vm.floating_ip_allocated
        assert not ipaddress.ip_address(vm.ip).is_loopback
        with pytest.raises(InvalidArgument, match="127.0.0.0/8 only"):
            require_loopback(vm.ip)
        assert ec2_cloud.addresses() == []
        ec2.delete(vm)
    assert_nothing_left(ec2_cloud)


def test_private_address_mode_allocates_nothing(ec2_cloud: EC2Emulator) -> None:
    with launcher(ec2_cloud, address="private") as ec2:
        vm = ec2.launch(spec(ec2_cloud))
        assert vm.ip == vm.private_ip
        assert vm.ip.startswith("127.64.1.")
        assert vm.floating_ip_id is None
        assert ec2_cloud.addresses() == []
        ec2.delete(vm.server_id)
    assert_nothing_left(ec2_cloud)


def test_image_by_name_security_group_by_id_and_no_key_pair(ec2_cloud: EC2Emulator) -> None:
    seeded = ec2_cloud.seeded
    with launcher(ec2_cloud) as ec2:
        vm = ec2.launch(spec(ec2_cloud, image=seeded["image_name"], security_group=seeded["security_group_id"],
                             keypair=None))
        instance = ec2_cloud.instance(vm.server_id)
        assert instance["ImageId"] == seeded["image"]
        assert "KeyName" not in instance
        assert [g["GroupId"] for g in instance["SecurityGroups"]] == [seeded["security_group_id"]]
        ec2.delete(vm)
    assert_nothing_left(ec2_cloud)


def test_a_pending_instance_is_waited_for(ec2_cloud: EC2Emulator) -> None:
    ec2_cloud.faults.boot_delay = 0.5
    events: list[str] = []
    with launcher(ec2_cloud) as ec2:
        vm = ec2.launch(spec(ec2_cloud), progress=lambda stage, message: events.append(message))
        assert [m.split(": ")[-1] for m in events if m.startswith("instance MiCADO")][:2] == ["pending", "running"]
        ec2.delete(vm)
    assert_nothing_left(ec2_cloud)


def test_reads_are_retried_a_bounded_number_of_times(ec2_cloud: EC2Emulator) -> None:
    ec2_cloud.faults.lose_answer = {"DescribeImages"}
    with launcher(ec2_cloud, max_attempts=3) as ec2, pytest.raises(LaunchError, match="closed the connection"):
        ec2.launch(spec(ec2_cloud))
    assert ec2_cloud.requests.count("DescribeImages") == 3
    assert "RunInstances" not in ec2_cloud.requests
    assert_nothing_left(ec2_cloud)


# --- bad input: zero requests -----------------------------------------------------------------


@pytest.mark.parametrize(("changes", "fragment"), [
    ({"image": "ami-XYZ"}, "not an AMI id"),
    ({"image": " "}, "image must be a non-empty"),
    ({"flavor": "large"}, "instance type such as 't3.medium'"),
    ({"network": "net-1"}, "subnet id such as"),
    ({"security_group": "sg-nothex!"}, "not a security group id"),
    ({"floating_network": "public"}, "floating_network is an OpenStack argument"),
    ({"user_data": "#cloud-config\n" + "x" * 17000}, "too large for EC2"),
    ({"name": "bad name"}, "not a valid server name"),
    ({"launch_token": "has space"}, "launch_token"),
    ({"keypair": ""}, "keypair must be"),
])
def test_bad_input_fails_before_any_request(ec2_cloud: EC2Emulator, changes: dict, fragment: str) -> None:
    with launcher(ec2_cloud) as ec2, pytest.raises(InvalidArgument, match=fragment):
        ec2.launch(spec(ec2_cloud, **changes))
    assert ec2_cloud.requests == []


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"region": "eu west 1"}, "region must be an EC2 region"),
    ({"address": "floating"}, "address must be one of public, private"),
    ({"endpoint_url": "ftp://x"}, r"endpoint_url .* is not an http\(s\) URL"),
    ({"request_timeout": 0}, "request_timeout must be a positive"),
    ({"max_attempts": 0}, "max_attempts"),
    ({"verify": "/no/such/ca.pem"}, "no such CA bundle"),
])
def test_bad_constructor_arguments(ec2_cloud: EC2Emulator, kwargs: dict, fragment: str) -> None:
    with pytest.raises(InvalidArgument, match=fragment):
        launcher(ec2_cloud, **kwargs)
    with pytest.raises(InvalidArgument, match="must be an EC2Auth"):
        EC2Launcher({"accesskey": "x"}, region="eu-west-1")  # type: ignore[arg-type]
    assert ec2_cloud.requests == []


def test_without_boto3_construction_says_which_extra_to_install() -> None:
    probe = (
        "import sys; sys.modules['boto3'] = None\n"
        "from micado.config.credentials import EC2Auth\n"
        "from micado.launcher.ec2 import EC2Launcher\n"
        "try:\n    EC2Launcher(EC2Auth('AKIAEXAMPLE', 's'), region='eu-west-1')\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip().splitlines() == [
        "MicadoException the EC2 launcher needs boto3, which is not installed: pip install 'micado-client[ec2]'"]


def test_repr_and_records_keep_no_secret(ec2_cloud: EC2Emulator) -> None:
    ec2 = launcher(ec2_cloud, address="private")
    assert ec2_cloud.secret_access_key not in repr(ec2)
    assert ec2_cloud.secret_access_key not in repr(ec2.credentials)
    fields = ec2.record_fields()
    assert fields == {"region": ec2_cloud.region, "endpoint_url": ec2_cloud.endpoint_url, "address": "private"}
    again = EC2Launcher.from_record(ec2_cloud.credentials, json.loads(json.dumps(fields)))
    assert again.record_fields() == fields
    with pytest.raises(InvalidArgument, match="needs a region"):
        EC2Launcher.from_record(ec2_cloud.credentials, {"address": "public"})
    assert ec2_cloud.requests == []


# --- the fault matrix: fault -> error -> nothing left --------------------------------------------


@pytest.mark.parametrize(("changes", "fragment"), [
    ({"image": "ami-0123456789abcdef0"}, "unknown image 'ami-0123456789abcdef0'; available: micado-ubuntu-22.04"),
    ({"image": "no-such-image"}, "unknown image 'no-such-image'; available: micado-ubuntu-22.04"),
    ({"flavor": "t9.huge"}, "unknown instance type 't9.huge' (flavor)"),
    ({"network": "subnet-0123456789abcdef0"}, "unknown subnet 'subnet-0123456789abcdef0' (network)"),
    ({"keypair": "nope"}, "unknown key pair 'nope'; available: micado-key"),
    ({"security_group": "nope"}, "unknown security group (in vpc-"),
    ({"security_group": "sg-0123456789abcdef0"}, "available: default, micado-sg"),
])
def test_unknown_resources_are_named_with_what_exists(ec2_cloud: EC2Emulator, changes: dict, fragment: str) -> None:
    with launcher(ec2_cloud) as ec2, pytest.raises(LaunchError) as caught:
        ec2.launch(spec(ec2_cloud, **changes))
    assert fragment in str(caught.value)
    assert "RunInstances" not in ec2_cloud.requests
    assert_nothing_left(ec2_cloud)


def test_refused_credentials(ec2_cloud: EC2Emulator) -> None:
    wrong = EC2Auth(access_key_id="AKIAWRONGWRONGWRONG", secret_access_key="nope")
    with EC2Launcher(wrong, region=ec2_cloud.region, endpoint_url=ec2_cloud.endpoint_url) as ec2, \
            pytest.raises(LaunchError, match=r"authentication failed at .* for access key AKIA\.\.\.RONG") as caught:
        ec2.launch(spec(ec2_cloud))
    assert "nope" not in str(caught.value)
    ec2_cloud.faults.auth_failure = True  # a key revoked since
    with launcher(ec2_cloud) as ec2, pytest.raises(LaunchError, match="AuthFailure"):
        ec2.launch(spec(ec2_cloud))
    assert "RunInstances" not in ec2_cloud.requests
    ec2_cloud.faults.auth_failure = False
    assert_nothing_left(ec2_cloud)


FAULTS = [
    # (switches, error type, message fragment, instance made before the failure)
    ({"instance_limit": True}, LaunchError, "InstanceLimitExceeded", False),
    ({"address_limit": True}, LaunchError, "AddressLimitExceeded", True),
    ({"lose_answer": {"RunInstances"}}, LaunchError, "closed the connection without answering", True),
    ({"lose_answer": {"AllocateAddress"}}, LaunchError, "allocate an Elastic IP", True),
    ({"lose_answer": {"AssociateAddress"}}, LaunchError, "associate Elastic IP", True),
    ({"slow": {"RunInstances": 3.0}}, LaunchError, "did not answer within 1 s", True),
    ({"slow": {"AllocateAddress": 3.0}}, LaunchError, "did not answer within 1 s", True),
    ({"slow": {"DescribeImages": 3.0}}, LaunchError, "did not answer within 1 s", False),
    ({"boot_hangs": True}, MicadoTimeout, "was still pending when the launch timeout of 2 s ran out", True),
    ({"terminate_at_boot": True}, LaunchError, "went to terminated instead of running", True),
]


@pytest.mark.parametrize(("switches", "error", "fragment", "made"), FAULTS,
                         ids=[next(iter(f[0])) + ":" + str(next(iter(f[0].values()))) for f in FAULTS])
def test_fault_matrix(ec2_cloud: EC2Emulator, switches: dict, error: type, fragment: str, made: bool) -> None:
    for name, value in switches.items():
        setattr(ec2_cloud.faults, name, value)
    the_spec = spec(ec2_cloud)
    undo: list[str] = []
    with launcher(ec2_cloud, request_timeout=1.0, max_attempts=1) as ec2, pytest.raises(error) as caught:
        ec2.launch(the_spec, timeout=2.0, progress=lambda stage, message: undo.append(message))
    assert fragment in str(caught.value)
    assert not getattr(caught.value, "__notes__", None)  # every undo step worked
    ec2_cloud.faults.slow = {}
    time.sleep(0.1 if not switches.get("slow") else 2.5)  # a slow answer's request is carried out meanwhile
    assert ec2_cloud.live_instances() == []
    assert ec2_cloud.addresses() == []
    ours = [i for i in ec2_cloud._all_instances() if tags(i).get(LAUNCH_TAG) == the_spec.launch_token]
    assert bool(ours) == made
    assert all(i["State"]["Name"] == "terminated" for i in ours)
    if made:
        assert any(m.startswith("undoing: terminate instance") for m in undo)


def test_a_second_interrupt_stops_the_undo_and_says_what_is_left(ec2_cloud: EC2Emulator) -> None:
    ec2_cloud.faults.boot_delay = 30.0

    def interrupt(stage: str, message: str) -> None:
        if message.endswith(": pending") or message.startswith("undoing"):
            raise KeyboardInterrupt

    with launcher(ec2_cloud) as ec2, pytest.raises(KeyboardInterrupt) as caught:
        ec2.launch(spec(ec2_cloud), progress=interrupt)
    assert "not done: terminate instance" in " ".join(caught.value.__notes__)
    # what was left is found by its marks, and removed
    with launcher(ec2_cloud) as ec2:
        [left] = ec2.marked()
        ec2.remove_marked(left)
    assert_nothing_left(ec2_cloud)


def test_an_interrupt_undoes_the_launch(ec2_cloud: EC2Emulator) -> None:
    ec2_cloud.faults.boot_delay = 30.0

    def interrupt(stage: str, message: str) -> None:
        if message.endswith(": pending"):
            raise KeyboardInterrupt

    with launcher(ec2_cloud) as ec2, pytest.raises(KeyboardInterrupt):
        ec2.launch(spec(ec2_cloud), progress=interrupt)
    assert_nothing_left(ec2_cloud)


def test_an_unreachable_endpoint() -> None:
    credentials = EC2Auth(access_key_id="AKIAEXAMPLEEXAMPLE", secret_access_key="s")
    ec2 = EC2Launcher(credentials, region="eu-west-1", endpoint_url=f"http://127.0.0.1:{free_port()}",
                      connect_timeout=1.0, max_attempts=1)
    started = time.monotonic()
    with pytest.raises(LaunchError, match="cannot reach the EC2 endpoint"):
        ec2.launch(LaunchSpec(image="ami-0123abcd", flavor="t3.micro", network="", user_data=USER_DATA))
    assert time.monotonic() - started < 5


# --- cleanup and delete ------------------------------------------------------------------------


def test_marked_finds_what_launches_made_and_remove_marked_removes_it(ec2_cloud: EC2Emulator) -> None:
    with launcher(ec2_cloud) as ec2:
        vm = ec2.launch(spec(ec2_cloud))
        other = ec2.launch(spec(ec2_cloud), timeout=60)
        ec2.delete(other)  # terminated: no longer listed
        found = {(r.kind, r.id) for r in ec2.marked()}
        assert found == {("server", vm.server_id), ("address", vm.floating_ip_id)}
        [address] = [r for r in ec2.marked() if r.kind == "address"]
        assert address.attached_to == vm.server_id
        assert address.name == vm.name
        assert address.address == vm.ip
        for resource in sorted(ec2.marked(), key=lambda r: r.kind):  # the address first
            ec2.remove_marked(resource)
        assert ec2.marked() == []
    assert_nothing_left(ec2_cloud)


def test_delete_of_what_is_already_gone_warns(ec2_cloud: EC2Emulator) -> None:
    with launcher(ec2_cloud) as ec2:
        vm = ec2.launch(spec(ec2_cloud))
        ec2.delete(vm)
        removal = ec2.delete(vm)
        assert not removal.server_found
        assert not removal.floating_ip_released
        assert removal.warnings == [f"Elastic IP {vm.floating_ip_id} was already gone",
                                    f"instance {vm.server_id} was already gone"]
        assert ec2.state(vm.server_id) is None
        assert ec2.state("i-0123456789abcdef0") is None
        with pytest.raises(InvalidArgument, match="instance id"):
            ec2.delete("vm-1")


def test_delete_leaves_an_elastic_ip_it_did_not_allocate(ec2_cloud: EC2Emulator) -> None:
    with launcher(ec2_cloud, address="private") as ec2:
        vm = ec2.launch(spec(ec2_cloud))
    foreign = ec2_cloud._moto.allocate_address(Domain="vpc")["AllocationId"]
    with launcher(ec2_cloud) as ec2:
        removal = ec2.delete(dataclasses.replace(vm, floating_ip_id=foreign, floating_ip_allocated=False))
    assert not removal.floating_ip_released
    assert [a["AllocationId"] for a in ec2_cloud.addresses()] == [foreign]
    assert ec2_cloud.live_instances() == []
    ec2_cloud._moto.release_address(AllocationId=foreign)


# --- the docs' example ---------------------------------------------------------------------------


def test_the_ec2_page_s_example_runs_against_the_emulator(
        ec2_cloud: EC2Emulator, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:

    page = (DOCS / "ec2.rst").read_text()
    code = page.split("Using the launcher directly::\n", 1)[1].split("\nCredentials\n", 1)[0]
    code = "\n".join(line[4:] for line in code.splitlines())
    seeded = ec2_cloud.seeded
    for real, local in [('region="eu-west-1"', f'region="{ec2_cloud.region}", endpoint_url="{ec2_cloud.endpoint_url}"'),
                        ('"ami-0123456789abcdef0"', f'"{seeded["image"]}"'),
                        ('"subnet-0123456789abcdef0"', f'"{seeded["network"]}"'),
                        ('"micado-master"', f'"{seeded["security_group"]}"')]:
        assert real in code
        code = code.replace(real, local)
    monkeypatch.setenv("MICADO_CLI_DIR", str(tmp_path))
    (tmp_path / "credentials-cloud-api.yml").write_text(ec2_cloud.credentials_yaml())
    (tmp_path / "credentials-cloud-api.yml").chmod(0o600)
    exec(compile(code, "docs/ec2.rst", "exec"), {"public_key": USER_DATA.split('"')[1]})
    assert_nothing_left(ec2_cloud)
