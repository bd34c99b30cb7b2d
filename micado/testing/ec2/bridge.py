"""The VM bridge of the EC2 emulator: each running instance becomes a local sshd "VM".

A thread looks at moto's instances every ``poll_interval`` seconds: it boots a
:class:`~micado.testing.vm.VMPool` VM for each running instance (its user data read
with ``DescribeInstanceAttribute``), serves SSH on the instance's public (Elastic)
or private IP, per ``address``, once the instance has one, and deletes the VM when
the instance is terminated. An address outside 127.0.0.0/8 is refused by
:func:`~micado.testing.vm.require_loopback` before anything listens or connects
there, and noted in :attr:`VMBridge.refused`.
"""

from __future__ import annotations

import base64
import logging
import threading
from typing import Any

from micado.exceptions import InvalidArgument, LaunchError
from micado.testing.ec2.models import all_instances
from micado.testing.vm import VMPool, require_loopback

__all__ = ["VMBridge"]

logger = logging.getLogger(__name__)

_STOP_TIMEOUT = 10.0


class VMBridge:
    """Keeps one local VM per running instance of moto, serving SSH on the instance's address.

    Args:
        vms: the pool whose VMs stand in for the instances.
        address: ``"public"`` (the public or Elastic IP) or ``"private"``.
        poll_interval: seconds between two looks at the instances.

    Attributes:
        refused: ``(instance id, address)`` pairs not served (outside 127.0.0.0/8).
        errors: ``(instance id, message)`` of VMs that could not boot; the instance
            is then terminated, like a server going to ERROR.
    """

    def __init__(self, vms: VMPool, address: str, poll_interval: float) -> None:
        self.vms = vms
        self.address = address
        self.poll_interval = poll_interval
        self.refused: list[tuple[str, str]] = []
        self.errors: list[tuple[str, str]] = []
        self._moto: Any = None
        self._served: dict[str, str | None] = {}  # instance id -> the address its VM serves
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, moto: Any) -> None:
        """Start bridging in a daemon thread.

        Args:
            moto: a boto3 EC2 client talking to moto directly.
        """
        self._moto = moto
        self._thread = threading.Thread(target=self._loop, name="ec2-vm-bridge", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and delete every VM it made (none is booted again)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=_STOP_TIMEOUT)
            self._thread = None
        for instance_id in list(self._served):
            self._delete_vm(instance_id)

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self._sync_vms()
            except Exception as exc:  # keep bridging; a test sees the VM missing
                logger.warning("EC2 VM bridge: %s", exc)

    def _sync_vms(self) -> None:
        """Boot a VM per running instance, serve SSH on its address, delete those terminated."""
        seen = set()
        for instance in all_instances(self._moto):
            instance_id, state = instance["InstanceId"], instance["State"]["Name"]
            seen.add(instance_id)
            if state != "running":
                if instance_id in self._served:
                    self._delete_vm(instance_id)
                continue
            if instance_id not in self._served:
                if any(instance_id == failed for failed, _ in self.errors):
                    continue
                if not self._boot_vm(instance_id):
                    continue
            wanted = instance.get("PublicIpAddress" if self.address == "public" else "PrivateIpAddress")
            if wanted != self._served[instance_id]:
                self._serve(instance_id, wanted)
        for instance_id in [i for i in self._served if i not in seen]:
            self._delete_vm(instance_id)

    def _boot_vm(self, instance_id: str) -> bool:
        attribute = self._moto.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
        encoded = (attribute.get("UserData") or {}).get("Value") or ""
        try:
            user_data = base64.b64decode(encoded).decode("utf-8")
            self.vms.boot({"id": instance_id, "user_data": user_data})
        except (LaunchError, InvalidArgument, ValueError) as exc:
            # Like a Nova server going to ERROR: the instance does not stay running.
            self.errors.append((instance_id, str(exc)))
            logger.warning("EC2 VM bridge: instance %s cannot become a VM: %s", instance_id, exc)
            self._moto.terminate_instances(InstanceIds=[instance_id])
            return False
        self._served[instance_id] = None
        return True

    def _serve(self, instance_id: str, address: str | None) -> None:
        self._served[instance_id] = address
        if address is not None:
            try:
                require_loopback(address)
            except InvalidArgument:
                self.refused.append((instance_id, address))
                logger.warning("EC2 VM bridge: instance %s has address %s, outside 127.0.0.0/8: not served",
                               instance_id, address)
                address = None
        self.vms.set_address(instance_id, address)

    def _delete_vm(self, instance_id: str) -> None:
        self._served.pop(instance_id, None)
        self.vms.delete(instance_id)
