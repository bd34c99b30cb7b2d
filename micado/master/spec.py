"""What to create: every argument of ``client.master.create()``, declared once.

:class:`CreateSpec` is the one declaration: ``MicadoMaster.create`` builds it from its
keyword arguments, :meth:`CreateSpec.problems` checks all of them at once (so a user
sees every missing or malformed argument in one message, before anything is made), and
the ``micado master create`` options are generated from its fields (their help text and
defaults come from here, never copied).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from micado.exceptions import InvalidArgument

__all__ = ["CreateSpec", "DEFAULT_REMOTE_CERT_PATH", "Option", "options"]

#: Where ansible-micado leaves the master's self-signed TLS certificate (with its key).
DEFAULT_REMOTE_CERT_PATH = "/var/lib/micado/zorp/config/ssl.pem"

#: The launchers, and "none": a host the user already has (``master.deploy``), which takes
#: the arguments of MiCADO and of reaching the machine, and requires no cloud's.
_ALL = ("openstack", "ec2", "none")


def _arg(help_text: str, default: Any = None, *, launchers: tuple[str, ...] = _ALL, cli: bool = True,
         required: bool | tuple[str, ...] = False, kind: str = "text") -> Any:
    if required is True:
        required = tuple(name for name in launchers if name != "none")
    elif required is False:
        required = ()
    return field(default=default, metadata={
        "help": help_text, "launchers": launchers, "cli": cli, "required": required, "kind": kind})


@dataclass(frozen=True, kw_only=True)
class CreateSpec:
    """The arguments of ``client.master.create()`` (see its docstring for each one).

    Construct it with keyword arguments; :meth:`checked` validates it for a launcher.
    """

    # -- the cloud
    auth_url: str | None = _arg("Keystone v3 URL of the cloud", launchers=("openstack",), required=True,
                                kind="url")
    project_id: str | None = _arg("OpenStack project id (required with password credentials)",
                                  launchers=("openstack",))
    region: str | None = _arg("cloud region")
    user_domain_name: str = _arg("Keystone domain of the user", "Default", launchers=("openstack",))
    endpoint_url: str | None = _arg("EC2 API URL of an EC2-compatible cloud", launchers=("ec2",), kind="url")
    image: str | None = _arg("image for the master VM, name or id (Ubuntu 22.04 or 20.04)", required=True)
    flavor: str | None = _arg("flavor / instance type, name or id (2 vCPU, 4 GB RAM at least)", required=True)
    network: str | None = _arg("network, name or id (EC2: a subnet id; default: the default VPC's)",
                               required=("openstack",))
    keypair: str | None = _arg("cloud key pair, for your own SSH access", required=("openstack",))
    security_group: str = _arg("security group, name or id", "all")
    floating_network: str | None = _arg("external network to allocate a floating IP from",
                                        launchers=("openstack",))
    address: str = _arg("which address of the instance to use: public or private", "public", launchers=("ec2",),
                        kind="choice:public,private")
    # -- MiCADO
    micado_user: str = _arg("MiCADO web user", "admin")
    micado_password: str | None = _arg("MiCADO web password (CLI: MICADO_PASSWORD); random if not given",
                                       cli=False, kind="secret")
    micado_version: str | None = _arg("ansible-micado release tag to deploy (default: the newest)")
    playbook: str | os.PathLike[str] | None = _arg("ansible-micado source instead: tarball, folder or URL",
                                                   kind="source")
    settings: Mapping[str, Any] | None = _arg("the release's settings, e.g. enable_occopus (CLI: --set)",
                                              cli=False, kind="settings")
    registry_credentials: str | os.PathLike[str] | None = _arg(
        "container-registry credentials file (the release's credentials-registries.yml)", kind="file")
    # -- reaching the VM
    ssh_user: str = _arg("SSH user of the image", "ubuntu", kind="login")
    ssh_port: int = _arg("SSH port of the VM", 22, kind="port")
    api_port: int = _arg("HTTPS port of the MiCADO API", 443, kind="port")
    remote_cert_path: str = _arg("the master's certificate on the VM", DEFAULT_REMOTE_CERT_PATH)
    # -- how long to wait
    boot_timeout: float = _arg("seconds for the VM to run", 900.0, kind="seconds")
    ssh_timeout: float = _arg("seconds for SSH to accept the client's key", 600.0, kind="seconds")
    install_timeout: float = _arg("seconds for the Ansible deployment", 3600.0, kind="seconds")
    api_timeout: float = _arg("seconds for the API to answer after the deployment", 600.0, kind="seconds")

    @classmethod
    def build(cls, arguments: Mapping[str, Any]) -> CreateSpec:
        """A spec from keyword arguments, refusing names it does not know.

        Raises:
            InvalidArgument: an unknown name (the valid ones are listed).
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(arguments) - known)
        if unknown:
            raise InvalidArgument(f"unknown argument(s) {', '.join(unknown)}; create() takes: "
                                  f"{', '.join(sorted(known))}")
        return cls(**arguments)

    def problems(self, launcher: str) -> list[str]:
        """Every problem with the arguments for ``launcher``, each naming its argument.

        Arguments another launcher uses are refused when set, so nothing given is
        silently ignored.
        """
        found: list[str] = []
        missing: list[str] = []
        for spec_field in dataclasses.fields(self):
            name, meta, value = spec_field.name, spec_field.metadata, getattr(self, spec_field.name)
            if launcher not in meta["launchers"]:
                if value is not None and value != spec_field.default:
                    found.append(f"{name} is not an argument of the {launcher} launcher")
                continue
            if value is None:
                if launcher in meta["required"]:
                    missing.append(name)
                continue
            problem = _check(meta["kind"], value)
            if problem:
                found.append(f"{name} {problem}")
        if self.playbook is not None and self.micado_version is not None:
            found.append("give either playbook or micado_version, not both")
        if isinstance(self.micado_user, str) and re.search(r"[\s:]", self.micado_user):
            found.append(f"micado_user {self.micado_user!r} must not contain whitespace or ':'")
        if self.micado_password is not None and isinstance(self.micado_password, str) and len(
                self.micado_password) < 8:
            found.append("micado_password must be at least 8 characters")
        if missing:
            hint = (" (or log in as a cloud of your clouds.yaml: MicadoClient(cloud=NAME), micado master "
                    "create --cloud NAME)" if launcher == "openstack" and "auth_url" in missing else "")
            found.insert(0, f"missing argument{'s' if len(missing) > 1 else ''}: {', '.join(missing)}{hint}")
        return found

    def checked(self, launcher: str) -> CreateSpec:
        """This spec, once :meth:`problems` finds none.

        Raises:
            InvalidArgument: every problem, in one message (nothing has been made).
        """
        found = self.problems(launcher)
        if found:
            raise InvalidArgument("; ".join(found) if len(found) > 1 else found[0])
        return self

    def cloud_arguments(self, launcher: str) -> dict[str, Any]:
        """The arguments of this spec that belong to ``launcher``'s cloud login."""
        names = ("auth_url", "project_id", "region", "user_domain_name", "endpoint_url", "address")
        return {name: getattr(self, name) for name in names
                if launcher in _meta(name)["launchers"]}


def _meta(name: str) -> Mapping[str, Any]:
    return next(f.metadata for f in dataclasses.fields(CreateSpec) if f.name == name)


def _check(kind: str, value: Any) -> str | None:
    """What is wrong with ``value`` for an argument of ``kind``, or ``None``."""
    from micado import checks

    if kind in ("text", "secret", "url", "login"):
        if not isinstance(value, str) or not value.strip():
            return "must be a non-empty string"
        if kind == "login":
            problem = checks.command_word_problem(value)
            return None if problem is None else f"{problem}: {value!r}"
        if kind == "url":
            try:
                checks.http_url("", value, "")
            except InvalidArgument:
                return f"must be an http(s) URL, not {value!r}"
        return None
    if kind.startswith("choice:"):
        choices = kind.split(":", 1)[1].split(",")
        return None if value in choices else f"must be one of {', '.join(choices)}, not {value!r}"
    if kind == "port":
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536
        return None if ok else f"must be a TCP port number (1-65535), not {value!r}"
    if kind == "seconds":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < math.inf
        return None if ok else f"must be a positive number of seconds, not {value!r}"
    if kind in ("source", "file"):
        if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
            return "must be a path" + (" or an http(s) URL" if kind == "source" else "")
        if kind == "file" and not Path(value).expanduser().is_file():
            return f"{value}: " + ("is a folder" if Path(value).expanduser().is_dir() else "no such file")
        return None
    if kind == "settings":
        return None if isinstance(value, Mapping) else "must be a mapping of setting names to values"
    raise AssertionError(f"unknown argument kind {kind}")


@dataclass(frozen=True)
class Option:
    """One ``micado master create`` option, derived from a :class:`CreateSpec` field."""

    name: str
    help: str
    type: type
    default: Any


def options() -> list[Option]:
    """The command-line options of ``master create``: the spec's fields meant for the command line."""
    found = []
    for spec_field in dataclasses.fields(CreateSpec):
        meta = spec_field.metadata
        if not meta["cli"]:
            continue
        kind = meta["kind"]
        value_type: type = int if kind == "port" else float if kind == "seconds" else str
        found.append(Option(spec_field.name, meta["help"], value_type, spec_field.default))
    return found
