"""A loopback EC2 emulator: moto's EC2 server, a fault proxy in front, and instances as local VMs.

:class:`EC2Emulator` runs ``python -m moto.server`` (moto 5, the ``moto[server]``
extra) in a process of its own on a free port of 127.0.0.1, puts a
:class:`~micado.testing.ec2_proxy.FaultProxy` in front of it (the endpoint clients
use: its request log and fault switches), and seeds what a launch needs::

    with EC2Emulator() as cloud:
        cloud.endpoint_url               # http://127.0.0.1:<port>
        cloud.credentials                # an EC2Auth the proxy accepts
        cloud.seeded["network"]          # a subnet on 127.64.1.0/24
        cloud.faults.instance_limit = True
        ...
        assert cloud.live_instances() == []

Addresses: moto gives instances in its default VPC a private ``10.x`` address and a
public one in ``54.214.0.0/16``, which nothing local may ever connect to. The seeded
VPC and subnet are on a loopback CIDR (``127.64.0.0/16``), so private addresses there
are loopback ones, and moto's Elastic IPs come from 127.0.0.0/8.

With a :class:`~micado.testing.vm.VMPool`, a bridge thread makes each running
instance a local sshd "VM" (its user data read with ``DescribeInstanceAttribute``),
serves SSH on the instance's public (Elastic) or private IP, per ``address``, once the
instance has one, and deletes the VM when the instance is terminated. An address
outside 127.0.0.0/8 is refused by :func:`~micado.testing.vm.require_loopback` before
anything listens or connects there, and noted in :attr:`EC2Emulator.refused`.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from micado.exceptions import InvalidArgument, LaunchError, MicadoException
from micado.progress import wait_until
from micado.testing.ec2_proxy import EC2Faults, FaultProxy
from micado.testing.vm import VMPool, free_port, require_loopback

__all__ = ["EC2Emulator", "EC2Faults", "LOOPBACK_VPC_CIDR"]

logger = logging.getLogger(__name__)

#: The seeded VPC's CIDR: its instances' private addresses are loopback ones.
LOOPBACK_VPC_CIDR = "127.64.0.0/16"
_SUBNET_CIDR = "127.64.1.0/24"
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0


class EC2Emulator:
    """moto's EC2 server behind a fault proxy on 127.0.0.1, seeded, optionally with local VMs.

    Args:
        region: the region the seeded resources are in.
        vms: a :class:`~micado.testing.vm.VMPool` whose VMs stand in for the
            running instances; ``None`` for no VMs.
        address: which instance address the VMs serve SSH on: ``"public"`` (the
            public or Elastic IP) or ``"private"``, as the launcher's ``address=``.
        poll_interval: seconds between two looks of the VM bridge at the instances.
        log_dir: where moto's log goes (default: a temporary folder, removed by stop()).

    Attributes:
        seeded: names and ids of the seeded resources (``image``, ``image_name``,
            ``flavor``, ``network``, ``vpc``, ``keypair``, ``security_group``,
            ``security_group_id``, ``region``).
        refused: ``(instance id, address)`` pairs the bridge would not serve
            (outside 127.0.0.0/8).
        bridge_errors: ``(instance id, message)`` of VMs that could not boot; the
            instance is then terminated, like a server going to ERROR.
    """

    def __init__(self, *, region: str = "eu-west-1", vms: VMPool | None = None, address: str = "public",
                 poll_interval: float = 0.05, log_dir: str | os.PathLike[str] | None = None) -> None:
        if address not in ("public", "private"):
            raise InvalidArgument(f"address must be 'public' or 'private', not {address!r}")
        self.region = region
        self.vms = vms
        self.address = address
        self.poll_interval = poll_interval
        self.access_key_id = "AKIA" + secrets.token_hex(8).upper()
        self.secret_access_key = secrets.token_urlsafe(30)
        self.seeded: dict[str, str] = {}
        self.refused: list[tuple[str, str]] = []
        self.bridge_errors: list[tuple[str, str]] = []
        self._log_dir = Path(log_dir) if log_dir else None
        self._own_log_dir = not log_dir  # a temporary one, removed by stop()
        self._process: subprocess.Popen[bytes] | None = None
        self._port = 0
        self._moto: Any = None
        self.proxy = FaultProxy(0, self.access_key_id, terminate=self._terminate_now)
        self._served: dict[str, str | None] = {}  # instance id -> the address its VM serves
        self._stop = threading.Event()
        self._bridge: threading.Thread | None = None

    # --- what tests use ------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        """The EC2 endpoint (the fault proxy)."""
        return self.proxy.url

    @property
    def moto_url(self) -> str:
        """moto itself, bypassing the proxy (no faults, no request log)."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def faults(self) -> EC2Faults:
        """The fault switches (:class:`~micado.testing.ec2_proxy.EC2Faults`)."""
        return self.proxy.faults

    @property
    def requests(self) -> list[str]:
        """The ``Action`` of every request clients sent, in order."""
        return self.proxy.requests

    @property
    def credentials(self) -> Any:
        """An :class:`~micado.config.credentials.EC2Auth` the emulator accepts."""
        from micado.config.credentials import EC2Auth

        return EC2Auth(access_key_id=self.access_key_id, secret_access_key=self.secret_access_key)

    def credentials_yaml(self) -> str:
        """A ``credentials-cloud-api.yml`` with the emulator's access key (MiCADO's format)."""
        return ("resource:\n  - type: ec2\n    auth_data:\n"
                f"      accesskey: {self.access_key_id}\n      secretkey: \"{self.secret_access_key}\"\n")

    def reset(self) -> None:
        """Clear the request log and every fault switch (the cloud's state stays)."""
        self.proxy.faults = EC2Faults()
        with self.proxy.lock:
            self.proxy.requests.clear()

    def live_instances(self) -> list[dict[str, Any]]:
        """Every instance that is not terminated (asked of moto directly)."""
        return [i for i in self._all_instances() if i["State"]["Name"] != "terminated"]

    def instance(self, instance_id: str) -> dict[str, Any]:
        """One instance as ``DescribeInstances`` shows it (terminated ones too)."""
        answer = self._moto.describe_instances(InstanceIds=[instance_id])
        return dict(answer["Reservations"][0]["Instances"][0])

    def addresses(self) -> list[dict[str, Any]]:
        """Every Elastic IP allocated."""
        return list(self._moto.describe_addresses()["Addresses"])

    # --- life cycle ------------------------------------------------------------------------

    def start(self) -> EC2Emulator:
        """Start moto and the proxy, seed, start the VM bridge; return self.

        Raises:
            MicadoException: moto is not installed or did not start (its log is quoted).
        """
        try:
            import moto.server  # noqa: F401 - only to fail early with a clear message
        except ImportError:
            raise MicadoException("the EC2 emulator needs moto's server: pip install 'moto[server]>=5,<6' "
                                  "(in the micado-client[testing] extra)") from None
        try:
            self._start_moto()
            self.proxy.upstream_port = self._port
            self.proxy.start()
            self._seed()
            if self.vms is not None:
                self._bridge = threading.Thread(target=self._bridge_loop, name="ec2-vm-bridge", daemon=True)
                self._bridge.start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_moto(self) -> None:
        import boto3
        from botocore.config import Config

        self._log_dir = self._log_dir or Path(tempfile.mkdtemp(prefix="micado-moto-"))
        self._log_dir.mkdir(parents=True, exist_ok=True)
        self._port = free_port()
        log = open(self._log_dir / "moto.log", "ab")  # noqa: SIM115 - the child keeps it
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self._port)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        finally:
            log.close()
        process = self._process

        def listening() -> bool | None:
            if process.poll() is not None:
                tail = (self._log_dir / "moto.log").read_text(errors="replace")[-800:]  # type: ignore[operator]
                raise MicadoException(f"moto's server exited with code {process.returncode}: {tail}")
            import socket

            try:
                with socket.create_connection(("127.0.0.1", self._port), timeout=1.0):
                    return True
            except OSError:
                return None

        wait_until(listening, what="moto's EC2 server", timeout=_START_TIMEOUT, stage="ec2-emulator")
        self._moto = boto3.session.Session(
            aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
        ).client("ec2", endpoint_url=self.moto_url, config=Config(retries={"total_max_attempts": 1}))

    def _seed(self) -> None:
        moto = self._moto
        vpc = moto.create_vpc(CidrBlock=LOOPBACK_VPC_CIDR)["Vpc"]["VpcId"]
        subnet = moto.create_subnet(VpcId=vpc, CidrBlock=_SUBNET_CIDR)["Subnet"]["SubnetId"]
        image = moto.register_image(Name="micado-ubuntu-22.04", RootDeviceName="/dev/sda1",
                                    Architecture="x86_64")["ImageId"]
        moto.create_key_pair(KeyName="micado-key")
        group = moto.create_security_group(GroupName="micado-sg", Description="MiCADO master",
                                           VpcId=vpc)["GroupId"]
        self.seeded = {
            "image": image, "image_name": "micado-ubuntu-22.04", "flavor": "t3.medium", "network": subnet,
            "vpc": vpc, "keypair": "micado-key", "security_group": "micado-sg", "security_group_id": group,
            "region": self.region,
        }

    def stop(self) -> None:
        """Stop the bridge (deleting every VM it made), the proxy and moto."""
        self._stop.set()
        if self._bridge is not None:
            self._bridge.join(timeout=_STOP_TIMEOUT)
            self._bridge = None
        if self.vms is not None:
            for instance_id in list(self._served):
                self._delete_vm(instance_id)
        self.proxy.stop()
        if self._moto is not None:
            self._moto.close()
            self._moto = None
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=_STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait(timeout=_STOP_TIMEOUT)
            self._process = None
        if self._own_log_dir and self._log_dir is not None:
            shutil.rmtree(self._log_dir, ignore_errors=True)
            self._log_dir = None

    def __enter__(self) -> EC2Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- internals -------------------------------------------------------------------------

    def _all_instances(self) -> list[dict[str, Any]]:
        answer = self._moto.describe_instances()
        return [i for r in answer.get("Reservations", []) for i in r.get("Instances", [])]

    def _terminate_now(self, instance_ids: list[str]) -> None:
        """The proxy's ``terminate_at_boot`` fault: EC2 gives up on the new instances."""
        if instance_ids:
            self._moto.terminate_instances(InstanceIds=instance_ids)

    def _bridge_loop(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self._sync_vms()
            except Exception as exc:  # keep bridging; a test sees the VM missing
                logger.warning("EC2 VM bridge: %s", exc)

    def _sync_vms(self) -> None:
        """Boot a VM per running instance, serve SSH on its address, delete those terminated."""
        assert self.vms is not None
        seen = set()
        for instance in self._all_instances():
            instance_id, state = instance["InstanceId"], instance["State"]["Name"]
            seen.add(instance_id)
            if state != "running":
                if instance_id in self._served:
                    self._delete_vm(instance_id)
                continue
            if instance_id not in self._served:
                if any(instance_id == failed for failed, _ in self.bridge_errors):
                    continue
                if not self._boot_vm(instance_id):
                    continue
            wanted = instance.get("PublicIpAddress" if self.address == "public" else "PrivateIpAddress")
            if wanted != self._served[instance_id]:
                self._serve(instance_id, wanted)
        for instance_id in [i for i in self._served if i not in seen]:
            self._delete_vm(instance_id)

    def _boot_vm(self, instance_id: str) -> bool:
        assert self.vms is not None
        attribute = self._moto.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
        encoded = (attribute.get("UserData") or {}).get("Value") or ""
        try:
            user_data = base64.b64decode(encoded).decode("utf-8")
            self.vms.boot({"id": instance_id, "user_data": user_data})
        except (LaunchError, InvalidArgument, ValueError) as exc:
            # Like a Nova server going to ERROR: the instance does not stay running.
            self.bridge_errors.append((instance_id, str(exc)))
            logger.warning("EC2 VM bridge: instance %s cannot become a VM: %s", instance_id, exc)
            self._moto.terminate_instances(InstanceIds=[instance_id])
            return False
        self._served[instance_id] = None
        return True

    def _serve(self, instance_id: str, address: str | None) -> None:
        assert self.vms is not None
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
        assert self.vms is not None
        self._served.pop(instance_id, None)
        self.vms.delete(instance_id)
