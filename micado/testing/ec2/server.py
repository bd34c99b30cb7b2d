"""The emulator itself: :class:`EC2Emulator` runs moto's server, the fault proxy and the VM bridge.

moto runs in a process of its own (``python -m moto.server``) on a free port of
127.0.0.1; clients talk to the :class:`~.proxy.FaultProxy` in front of it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from micado.exceptions import InvalidArgument, MicadoException
from micado.progress import wait_until
from micado.testing.ec2.bridge import VMBridge
from micado.testing.ec2.models import LOOPBACK_VPC_CIDR, EC2Faults, all_instances, seed_cloud
from micado.testing.ec2.proxy import FaultProxy
from micado.testing.vm import VMPool, free_port

__all__ = ["EC2Emulator", "EC2Faults", "LOOPBACK_VPC_CIDR"]

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
        proxy: the :class:`~.proxy.FaultProxy` clients talk to.
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
        self._log_dir = Path(log_dir) if log_dir else None
        self._own_log_dir = not log_dir  # a temporary one, removed by stop()
        self._process: subprocess.Popen[bytes] | None = None
        self._port = 0
        self._moto: Any = None
        self.proxy = FaultProxy(0, self.access_key_id, terminate=self._terminate_now)
        self._bridge = VMBridge(vms, address, poll_interval) if vms is not None else None

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
        """The fault switches (:class:`~.models.EC2Faults`)."""
        return self.proxy.faults

    @property
    def requests(self) -> list[str]:
        """The ``Action`` of every request clients sent, in order."""
        return self.proxy.requests

    @property
    def refused(self) -> list[tuple[str, str]]:
        """``(instance id, address)`` pairs the bridge would not serve (outside 127.0.0.0/8)."""
        return self._bridge.refused if self._bridge is not None else []

    @property
    def bridge_errors(self) -> list[tuple[str, str]]:
        """``(instance id, message)`` of VMs that could not boot; the instance is then
        terminated, like a server going to ERROR."""
        return self._bridge.errors if self._bridge is not None else []

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
        self.proxy.reset()

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
            self.seeded = seed_cloud(self._moto, self.region)
            if self._bridge is not None:
                self._bridge.start(self._moto)
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
        wait_until(self._moto_listening, what="moto's EC2 server", timeout=_START_TIMEOUT, stage="ec2-emulator")
        self._moto = boto3.session.Session(
            aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
        ).client("ec2", endpoint_url=self.moto_url, config=Config(retries={"total_max_attempts": 1}))

    def _moto_listening(self) -> bool | None:
        """True once moto accepts connections, None before.

        Raises:
            MicadoException: moto's process exited (the end of its log is quoted).
        """
        assert self._process is not None and self._log_dir is not None
        if self._process.poll() is not None:
            tail = (self._log_dir / "moto.log").read_text(errors="replace")[-800:]
            raise MicadoException(f"moto's server exited with code {self._process.returncode}: {tail}")
        try:
            with socket.create_connection(("127.0.0.1", self._port), timeout=1.0):
                return True
        except OSError:
            return None

    def stop(self) -> None:
        """Stop the bridge (deleting every VM it made), the proxy and moto."""
        if self._bridge is not None:
            self._bridge.stop()
        self.proxy.stop()
        if self._moto is not None:
            self._moto.close()
            self._moto = None
        self._stop_moto()
        if self._own_log_dir and self._log_dir is not None:
            shutil.rmtree(self._log_dir, ignore_errors=True)
            self._log_dir = None

    def _stop_moto(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=_STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait(timeout=_STOP_TIMEOUT)
            self._process = None

    def __enter__(self) -> EC2Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- internals -------------------------------------------------------------------------

    def _all_instances(self) -> list[dict[str, Any]]:
        return all_instances(self._moto)

    def _terminate_now(self, instance_ids: list[str]) -> None:
        """The proxy's ``terminate_at_boot`` fault: EC2 gives up on the new instances."""
        if instance_ids:
            self._moto.terminate_instances(InstanceIds=instance_ids)
