"""The local MiCADO stack on EC2: moto's EC2 server, local sshd VMs for its instances, the playbooks.

:class:`EC2Stack` is :class:`~micado.testing.stack.LocalStack` with the
:class:`~micado.testing.ec2.EC2Emulator` as its cloud, so that
``MicadoClient(launcher="ec2").master.create(**stack.create_kwargs)`` runs the real
lifecycle: EC2 through boto3, SSH, ``ansible-playbook``, the API. The instances live
in a VPC on a loopback CIDR, their Elastic IPs come from 127.0.0.0/8, and the VM bridge
refuses any address outside 127.0.0.0/8 before anything listens or connects there.
"""

from __future__ import annotations

import os
from typing import Any

from micado.testing.ec2.server import EC2Emulator
from micado.testing.stack import LocalStack

__all__ = ["EC2Stack"]


class EC2Stack(LocalStack):
    """Everything ``master.create`` needs with ``launcher="ec2"``, on 127.0.0.0/8.

    Args:
        base_dir: see :class:`~micado.testing.stack.LocalStack`.
        layout: the playbook layout to pack.
        fail_playbook: pack a playbook whose play fails.
        address: ``"public"`` (an Elastic IP: the seeded subnet gives no public IP) or
            ``"private"`` (the instance's loopback address in the VPC), as ``create(address=)``.

    Attributes:
        cloud: the :class:`~micado.testing.ec2.EC2Emulator`.
    """

    # Not a subclass of LocalStack's OpenStackEmulator: every method that uses the cloud's
    # own API is overridden here. (A LocalStack generic in its cloud would say so properly.)
    cloud: EC2Emulator  # type: ignore[assignment]

    def __init__(self, base_dir: str | os.PathLike[str] | None = None, *, layout: str = "0.12",
                 fail_playbook: bool = False, address: str = "public") -> None:
        super().__init__(base_dir, layout=layout, fail_playbook=fail_playbook)
        self.address = address
        self.cloud = EC2Emulator(vms=self.vms, address=address, log_dir=self.base_dir / "moto")

    def _cloud_kwargs(self) -> dict[str, Any]:
        seeded = self.cloud.seeded
        return {
            "region": seeded["region"],
            "endpoint_url": self.cloud.endpoint_url,
            "address": self.address,
            "image": seeded["image"],
            "flavor": seeded["flavor"],
            "network": seeded["network"],
            "keypair": seeded["keypair"],
            "security_group": seeded["security_group"],
        }

    def _credentials_text(self) -> str:
        return str(self.cloud.credentials_yaml())

    def leftovers(self) -> dict[str, list[Any]]:
        """What the cloud still has: instances not terminated, and Elastic IPs."""
        return {"instances": [i["InstanceId"] for i in self.cloud.live_instances()],
                "addresses": [a.get("PublicIp") for a in self.cloud.addresses()]}

    def stop(self) -> None:
        """Stop the VM bridge and moto first (no VM is booted again), then the rest."""
        if self._started:
            self.cloud.stop()
            self._started = False
        super().stop()
