"""The EC2 emulator's own state: fault switches, the request log, when instances were first seen, the seed.

moto keeps the cloud (instances, addresses, VPCs); this is what the emulator adds
around it, as moto lays out a service's ``models``: no HTTP here. The fault proxy
(:mod:`.proxy`) is a :class:`ProxyState` with a server, and :mod:`.responses`
decides from the state what a client sees.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EC2Faults", "ProxyState", "LOOPBACK_VPC_CIDR", "SUBNET_CIDR", "seed_cloud", "all_instances"]

#: The seeded VPC's CIDR: its instances' private addresses are loopback ones.
LOOPBACK_VPC_CIDR = "127.64.0.0/16"
#: The seeded subnet's CIDR, inside :data:`LOOPBACK_VPC_CIDR`.
SUBNET_CIDR = "127.64.1.0/24"


@dataclass
class EC2Faults:
    """Fault switches of the EC2 emulator (set one, reset it to stop).

    Attributes:
        auth_failure: every request is answered ``AuthFailure`` (401), as for a revoked key.
        instance_limit: ``RunInstances`` is refused with ``InstanceLimitExceeded`` (quota).
        address_limit: ``AllocateAddress`` is refused with ``AddressLimitExceeded`` (quota).
        lose_answer: actions (``"RunInstances"``) carried out whose answer is lost:
            the connection closes without one.
        slow: seconds the answer to an action waits, after the action is carried out
            (``"*"`` for every action).
        boot_delay: seconds an instance is reported ``pending`` after it is first seen.
        boot_hangs: instances are reported ``pending`` forever.
        terminate_at_boot: each instance ``RunInstances`` makes is terminated at once
            (as when EC2 lacks capacity after accepting the request).
    """

    auth_failure: bool = False
    instance_limit: bool = False
    address_limit: bool = False
    lose_answer: set[str] = field(default_factory=set)
    slow: dict[str, float] = field(default_factory=dict)
    boot_delay: float = 0.0
    boot_hangs: bool = False
    terminate_at_boot: bool = False


class ProxyState:
    """What the fault proxy knows: the accepted key, the switches, the requests, the instances seen.

    Args:
        access_key_id: the only access key accepted (others get ``AuthFailure``; the
            signature itself is not checked).

    Attributes:
        faults: the switches.
        requests: the ``Action`` of every request received, in order.
        lock: guards :attr:`requests` (and the first-seen times).
    """

    def __init__(self, access_key_id: str) -> None:
        self.access_key_id = access_key_id
        self.faults = EC2Faults()
        self.requests: list[str] = []
        self.lock = threading.Lock()
        self._first_seen: dict[str, float] = {}

    def record(self, action: str) -> None:
        """Note a request's ``Action`` in :attr:`requests`."""
        with self.lock:
            self.requests.append(action)

    def note_instances(self, instance_ids: Iterable[str], now: float) -> dict[str, float]:
        """Remember when each instance was first seen in an answer.

        Args:
            instance_ids: the instances an answer shows.
            now: the monotonic time of the answer.

        Returns:
            A copy of every instance's first-seen time.
        """
        with self.lock:
            for instance_id in instance_ids:
                self._first_seen.setdefault(instance_id, now)
            return dict(self._first_seen)

    def reset(self) -> None:
        """Clear the request log and every fault switch."""
        self.faults = EC2Faults()
        with self.lock:
            self.requests.clear()


def seed_cloud(moto: Any, region: str) -> dict[str, str]:
    """Make what a launch needs in moto: a loopback VPC and subnet, an image, a key pair, a group.

    Args:
        moto: a boto3 EC2 client talking to moto directly.
        region: the client's region, noted in the result.

    Returns:
        The names and ids of the seeded resources (``image``, ``image_name``,
        ``flavor``, ``network``, ``vpc``, ``keypair``, ``security_group``,
        ``security_group_id``, ``region``).
    """
    vpc = moto.create_vpc(CidrBlock=LOOPBACK_VPC_CIDR)["Vpc"]["VpcId"]
    subnet = moto.create_subnet(VpcId=vpc, CidrBlock=SUBNET_CIDR)["Subnet"]["SubnetId"]
    image = moto.register_image(Name="micado-ubuntu-22.04", RootDeviceName="/dev/sda1",
                                Architecture="x86_64")["ImageId"]
    moto.create_key_pair(KeyName="micado-key")
    group = moto.create_security_group(GroupName="micado-sg", Description="MiCADO master",
                                       VpcId=vpc)["GroupId"]
    return {
        "image": image, "image_name": "micado-ubuntu-22.04", "flavor": "t3.medium", "network": subnet,
        "vpc": vpc, "keypair": "micado-key", "security_group": "micado-sg", "security_group_id": group,
        "region": region,
    }


def all_instances(moto: Any) -> list[dict[str, Any]]:
    """Every instance moto has, terminated ones included, as ``DescribeInstances`` shows them.

    Args:
        moto: a boto3 EC2 client talking to moto directly.
    """
    answer = moto.describe_instances()
    return [i for r in answer.get("Reservations", []) for i in r.get("Instances", [])]
