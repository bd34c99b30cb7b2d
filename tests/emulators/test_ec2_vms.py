"""EC2 instances as local sshd VMs: the emulator's bridge, reached over real SSH on 127.0.0.0/8 only."""

from __future__ import annotations

from pathlib import Path

import pytest

from micado.exceptions import InvalidArgument
from micado.installer import ssh
from micado.launcher.base import LaunchSpec, cloud_init_user_data
from micado.launcher.ec2 import EC2Launcher
from micado.progress import wait_until
from micado.testing.ec2 import EC2Emulator
from micado.testing.vm import VMPool, free_port, require_loopback

pytestmark = pytest.mark.stack  # moto and sshd VMs, started by the tests themselves


def start(tmp_path: Path, address: str) -> tuple[EC2Emulator, VMPool]:
    pool = VMPool(tmp_path / "vms", ssh_port=free_port(), api_port=free_port())
    cloud = EC2Emulator(vms=pool, address=address, log_dir=tmp_path).start()
    return cloud, pool


def login(vm_ip: str, pool: VMPool, keypair: ssh.KeyPair) -> str:
    require_loopback(vm_ip)  # the guard, before any connection
    ssh.wait_for_ssh(vm_ip, port=pool.ssh_port, user=pool.user, key=keypair.private_key, timeout=30)
    return ssh.run(vm_ip, "echo $MICADO_VM_ID", port=pool.ssh_port, user=pool.user, key=keypair.private_key)


@pytest.mark.parametrize("address", ["public", "private"])
def test_an_instance_becomes_a_vm_on_its_elastic_or_private_ip(
        tmp_path: Path, keypair: ssh.KeyPair, address: str) -> None:
    cloud, pool = start(tmp_path, address)
    try:
        seeded = cloud.seeded
        with EC2Launcher(cloud.credentials, region=cloud.region, endpoint_url=cloud.endpoint_url,
                         address=address) as ec2:
            vm = ec2.launch(LaunchSpec(image=seeded["image"], flavor=seeded["flavor"], network=seeded["network"],
                                       security_group=seeded["security_group"],
                                       user_data=cloud_init_user_data(keypair.public_key)))
            assert (vm.floating_ip_id is not None) == (address == "public")
            assert login(vm.ip, pool, keypair).strip() == vm.server_id
            assert pool.vm(vm.server_id).address == vm.ip
            ec2.delete(vm)
        wait_until(lambda: True if pool.vms() == [] else None, what="the VM to be deleted", timeout=10)
        assert cloud.live_instances() == []
        assert cloud.addresses() == []
    finally:
        cloud.stop()
        pool.stop_all()


def test_an_address_outside_loopback_is_never_served(tmp_path: Path, keypair: ssh.KeyPair) -> None:
    cloud, pool = start(tmp_path, "public")
    try:
        with EC2Launcher(cloud.credentials, region=cloud.region, endpoint_url=cloud.endpoint_url) as ec2:
            # moto's default VPC: a public IP in 54.214.0.0/16
            vm = ec2.launch(LaunchSpec(image=cloud.seeded["image"], flavor="t3.micro", network="",
                                       security_group="default",
                                       user_data=cloud_init_user_data(keypair.public_key)))
            wait_until(lambda: cloud.refused or None, what="the bridge to see the address", timeout=10)
            assert cloud.refused == [(vm.server_id, vm.ip)]
            assert pool.vm(vm.server_id).address is None
            assert pool.vm(vm.server_id).pid is None
            with pytest.raises(InvalidArgument, match="127.0.0.0/8 only"):
                login(vm.ip, pool, keypair)
            ec2.delete(vm)
    finally:
        cloud.stop()
        pool.stop_all()


def test_user_data_without_a_key_terminates_the_instance(tmp_path: Path) -> None:
    cloud, pool = start(tmp_path, "private")
    try:
        with EC2Launcher(cloud.credentials, region=cloud.region, endpoint_url=cloud.endpoint_url,
                         address="private") as ec2:
            vm = ec2.launch(LaunchSpec(image=cloud.seeded["image"], flavor="t3.micro",
                                       network=cloud.seeded["network"], security_group="micado-sg",
                                       user_data="#cloud-config\n"))
            wait_until(lambda: cloud.bridge_errors or None, what="the bridge to refuse the VM", timeout=10)
            assert cloud.bridge_errors[0][0] == vm.server_id
            assert ec2.state(vm.server_id) is None
            assert pool.vms() == []
    finally:
        cloud.stop()
        pool.stop_all()
