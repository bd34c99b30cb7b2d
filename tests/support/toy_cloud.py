"""A toy cloud and its launcher, written as a third party would: nothing under ``micado/`` knows it.

The cloud is in-process: each server is a local VM of :class:`micado.testing.vm.VMPool`
(a real sshd on a loopback address), so ``master.create`` runs every real step on it.
A test makes a :class:`ToyCloud`, names it with a zone, and registers
:class:`ToyLauncher` (``register_launcher``, or this folder's entry point).
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from micado.arguments import Argument
from micado.config.credentials.checks import check_unknown_keys, text
from micado.exceptions import CredentialsError, InvalidArgument, LaunchError
from micado.launcher.base import (
    CREATOR_TAG,
    LAUNCH_TAG,
    LAUNCHED_TAG,
    STORE_TAG,
    LaunchedVM,
    Launcher,
    LaunchSpec,
    MarkedResource,
    Removal,
    check_spec,
    launch_marks,
)

#: The clouds a test runs, by zone name.
ZONES: dict[str, ToyCloud] = {}


@dataclass(frozen=True)
class ToyAuth:
    """The toy cloud's login: one token (``type: toy`` entry, ``auth_data: {token: ...}``)."""

    token: str = field(repr=False)


class ToyCloud:
    """Servers on local VMs: ``launch`` boots one and serves SSH on a free loopback address."""

    def __init__(self, zone: str, pool: Any, token: str, addresses: list[str]) -> None:
        self.zone, self.pool, self.token = zone, pool, token
        self.free = list(addresses)
        self.servers: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        ZONES[zone] = self

    def check(self, auth: ToyAuth) -> None:
        if auth.token != self.token:
            raise LaunchError(f"the toy cloud {self.zone} refused the token")

    def boot(self, name: str, user_data: str, marks: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            if not self.free:
                raise LaunchError(f"the toy cloud {self.zone} has no free address")
            server = {"id": f"toy-{secrets.token_hex(4)}", "name": name, "ip": self.free.pop(0), "marks": marks,
                      "user_data": user_data}
            self.servers[server["id"]] = server
        self.pool.boot(server)
        self.pool.set_address(server["id"], server["ip"])
        return server

    def remove(self, server_id: str) -> bool:
        with self.lock:
            server = self.servers.pop(server_id, None)
        if server is None:
            return False
        self.pool.delete(server_id)
        self.free.append(server["ip"])
        return True


class ToyLauncher(Launcher):
    """Starts the master on a toy cloud (a zone of local VMs)."""

    name = "toy"
    credential_type = "toy"
    options = (Argument("zone", "the toy cloud's zone", required=True, doc="the zone of the toy cloud."),)
    credentials_template: ClassVar[str] = (
        "# {path}\nresource:\n- type: toy\n  auth_data:\n    token: YOUR_TOY_TOKEN\n")
    credentials_file_entry: ClassVar[str] = (
        "# The toy cloud: a token.\n- type: toy\n  auth_data:\n    token:\n")

    @classmethod
    def read_credentials(cls, auth_data: Mapping[str, Any], file: Path, where: str, document: Any) -> ToyAuth:
        check_unknown_keys(auth_data, {"token"}, file, where)
        if auth_data.get("token") is None:
            raise CredentialsError(f"{file}: {where}.token is missing", path=file, key=f"{where}.token")
        return ToyAuth(text(auth_data, "token", file, where))

    def __init__(self, credentials: Any, *, zone: str) -> None:
        if not isinstance(credentials, ToyAuth):
            raise InvalidArgument(f"credentials must be a ToyAuth, not {type(credentials).__name__}")
        if zone not in ZONES:
            raise InvalidArgument(f"zone {zone!r} is not a toy cloud; zones: {', '.join(ZONES) or 'none'}")
        self.credentials, self.zone = credentials, zone

    @property
    def cloud(self) -> ToyCloud:
        cloud = ZONES[self.zone]
        cloud.check(self.credentials)
        return cloud

    @classmethod
    def from_arguments(cls, credentials: Any, arguments: Mapping[str, Any]) -> ToyLauncher:
        return cls(credentials, zone=arguments["zone"])

    def record_fields(self) -> dict[str, Any]:
        return {"zone": self.zone}

    @classmethod
    def from_record(cls, credentials: Any, fields: Mapping[str, Any]) -> ToyLauncher:
        return cls(credentials, zone=fields["zone"])

    def validate(self, spec: LaunchSpec) -> None:
        check_spec(dataclasses.replace(spec, network=spec.network or "the zone's"))  # a zone has one network

    def launch(self, spec: LaunchSpec, *, timeout: float = 600.0, progress: Any = None) -> LaunchedVM:
        return self._transaction(spec, timeout, progress)

    def _launch(self, spec: LaunchSpec, deadline: float, total: float, report: Any, undo: Any) -> LaunchedVM:
        cloud = self.cloud
        report("launch", f"booting {spec.name} in zone {self.zone}")
        server = cloud.boot(spec.name, spec.user_data, launch_marks(spec))
        undo.push(f"delete toy server {server['id']}", lambda: cloud.remove(server["id"]))
        return LaunchedVM(server_id=server["id"], name=spec.name, ip=server["ip"], launcher=self.name)

    def state(self, server_id: str) -> str | None:
        return "ACTIVE" if server_id in self.cloud.servers else None

    def delete(self, vm: LaunchedVM | str, *, floating_ip_id: str | None = None, floating_ip_allocated: bool = False,
               timeout: float = 300.0, progress: Any = None) -> Removal:
        server_id = vm if isinstance(vm, str) else vm.server_id
        return Removal(server_id=server_id, server_found=self.cloud.remove(server_id))

    def marked(self) -> list[MarkedResource]:
        return [MarkedResource(kind="server", id=server["id"], name=server["name"],
                               token=server["marks"].get(LAUNCH_TAG), store=server["marks"].get(STORE_TAG),
                               launched=server["marks"].get(LAUNCHED_TAG), creator=server["marks"].get(CREATOR_TAG))
                for server in list(self.cloud.servers.values()) if LAUNCH_TAG in server["marks"]]

    def remove_marked(self, resource: MarkedResource, *, timeout: float = 300.0, progress: Any = None) -> None:
        self.cloud.remove(resource.id)
