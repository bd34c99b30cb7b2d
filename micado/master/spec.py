"""What to create: every argument of ``client.master.create()`` and ``deploy()``, declared once.

:class:`CreateSpec` declares the arguments every cloud takes (the VM's image, flavor,
network..., MiCADO's, how to reach the VM, how long to wait); each launcher declares its
own (:attr:`micado.launcher.base.Launcher.options`: OpenStack's Keystone URL, EC2's
endpoint...), which the spec keeps in :attr:`CreateSpec.cloud`. From these declarations
come the checks (:meth:`CreateSpec.problems` finds every missing or malformed argument at
once, before anything is made), the Args of ``create()``'s and ``deploy()``'s
docstrings (:func:`arguments_doc`) and the ``micado master create``/``deploy`` options
(:func:`options`): help texts and defaults are written here, never copied.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from micado.arguments import Argument
from micado.exceptions import InvalidArgument

if TYPE_CHECKING:
    import os

    from micado.launcher.base import Launcher

__all__ = ["CreateSpec", "DEFAULT_REMOTE_CERT_PATH", "Option", "options", "arguments", "arguments_doc",
           "CLOUD", "ANY"]

#: Where ansible-micado leaves the master's self-signed TLS certificate (with its key).
DEFAULT_REMOTE_CERT_PATH = "/var/lib/micado/zorp/config/ssl.pem"

#: Arguments of a VM on a cloud: ``create()`` only.
CLOUD = "cloud"
#: Arguments of MiCADO and of reaching the machine: ``create()`` and ``deploy()``.
ANY = "any"
#: What every launcher requires (a launcher adds its own: :attr:`~micado.launcher.base.Launcher.requires`).
_REQUIRED = ("image", "flavor")


def _arg(help_text: str, default: Any = None, *, scope: str = ANY, cli: bool = True, kind: str = "text",
         doc: str = "", choices: tuple[str, ...] = ()) -> Any:
    return field(default=default, metadata={"scope": scope, "argument": Argument(
        "", help_text, default, kind=kind, choices=choices, cli=cli, doc=doc)})


@dataclass(frozen=True, kw_only=True)
class CreateSpec:
    """The arguments of ``client.master.create()`` (and of ``deploy()``, those it takes).

    Construct it with :meth:`build`; :meth:`checked` validates it for a launcher.
    """

    # -- the VM, on any cloud
    image: str | None = _arg("image for the master VM, name or id (Ubuntu 22.04 or 20.04)", scope=CLOUD,
                             doc="image name or id for the master VM (e.g. Ubuntu 22.04).")
    flavor: str | None = _arg("flavor / instance type, name or id (2 vCPU, 4 GB RAM at least)", scope=CLOUD,
                              doc="flavor or instance type, name or id (MiCADO needs 2 vCPU, 4 GB RAM at least).")
    network: str | None = _arg("network, name or id (EC2: a subnet id; default: the default VPC's)", scope=CLOUD,
                               doc="private network name or id (EC2: a subnet id; default: the default VPC's).")
    keypair: str | None = _arg("cloud key pair, for your own SSH access", scope=CLOUD,
                               doc="the cloud's key pair name, for your own SSH access.")
    security_group: str = _arg("security group, name or id", "all", scope=CLOUD,
                               doc="security group name or id.")
    region: str | None = _arg("cloud region", scope=CLOUD, doc="the cloud region, if it has several.")
    # -- MiCADO
    micado_user: str = _arg("MiCADO web user", "admin", doc="the MiCADO web user to create.")
    micado_password: str | None = _arg("MiCADO web password (CLI: MICADO_PASSWORD); random if not given",
                                       cli=False, kind="secret",
                                       doc="its password; a strong random one when not given.")
    micado_version: str | None = _arg("ansible-micado release tag to deploy (default: $MICADO_VERS, else the newest)",
                                      doc="the ansible-micado release tag to deploy (default: the newest, v0.12.6).")
    playbook: str | os.PathLike[str] | None = _arg("ansible-micado source instead: tarball, folder or URL",
                                                   kind="source",
                                                   doc="a local tarball, directory or URL of ansible-micado instead.")
    settings: Mapping[str, Any] | None = _arg(
        "the release's settings, e.g. enable_occopus (CLI: --set)", cli=False, kind="settings",
        doc="the release's own switches and settings, e.g. ``{\"enable_occopus\": True, "
            "\"web_session_timeout\": 1200}``; names the release does not define are refused. "
            "``grafana_admin_pwd`` is set to a random password (kept with the master's record) unless given here.")
    registry_credentials: str | os.PathLike[str] | None = _arg(
        "container-registry credentials file (the release's credentials-registries.yml)", kind="file",
        doc="a container-registry credentials file in the release's format "
            "(``credentials-registries.yml``), handed to the master.")
    vault_password: str | None = _arg(
        "password of credentials files encrypted with ansible-vault (CLI: --vault-password-file, "
        "MICADO_VAULT_PASSWORD_FILE, or a prompt)", cli=False, kind="secret",
        doc="the password of credentials files encrypted with ``ansible-vault`` (the cloud, registry and "
            "GCE credentials); default: the content of the file ``MICADO_VAULT_PASSWORD_FILE`` names. "
            "The release gets the files still encrypted and the password through a pipe; it is never recorded.")
    gce_credentials: str | os.PathLike[str] | None = _arg(
        "Google service-account JSON for GCE worker nodes (the release's credentials-gce.json)", kind="file",
        doc="a Google Cloud service-account key (JSON, ``type: service_account``) for worker nodes on GCE: "
            "checked, copied 0600 into the working copy only, and named to the release as ``gce_cred_path``.")
    tls_cert: str | os.PathLike[str] | None = _arg(
        "your TLS certificate (PEM) for the master's web and API, with --tls-key", kind="file",
        doc="your own TLS certificate (PEM; the server certificate first, then its chain) for the master, "
            "instead of a self-signed one (the release's ``tls: provision_method: user-supplied``); give "
            "``tls_key`` with it. A certificate a public CA signed is then verified against the system's CA "
            "store, any other is pinned.")
    tls_key: str | os.PathLike[str] | None = _arg(
        "the private key (PEM, unencrypted) of --tls-cert", kind="file",
        doc="the unencrypted private key (PEM) of ``tls_cert``; the pair is checked before anything is made.")
    # -- reaching the VM
    ssh_user: str = _arg("SSH login user (an image's; on your own host, a sudoer)", "ubuntu", kind="login",
                         doc="the login user of the VM image (deploy: a sudoer on the machine).")
    ssh_port: int = _arg("SSH port of the machine", 22, kind="port", doc="the machine's SSH port.")
    api_port: int = _arg("HTTPS port of the MiCADO API", 443, kind="port", doc="the HTTPS port of the MiCADO API.")
    remote_cert_path: str = _arg("the master's certificate on the machine", DEFAULT_REMOTE_CERT_PATH,
                                 doc="the master's certificate on the machine (relative paths are "
                                     "resolved against the SSH login directory).")
    # -- how long to wait
    boot_timeout: float = _arg("seconds for the VM to run", 900.0, scope=CLOUD, kind="seconds",
                               doc="seconds for the VM to become ACTIVE.")
    ssh_timeout: float = _arg("seconds for SSH to accept the client's key", 600.0, kind="seconds",
                              doc="seconds for SSH to accept the key.")
    install_timeout: float = _arg("seconds for the Ansible deployment", 3600.0, kind="seconds",
                                  doc="seconds for the Ansible deployment.")
    api_timeout: float = _arg("seconds for the API to answer after the deployment", 600.0, kind="seconds",
                              doc="seconds for the API to answer after the deployment.")
    #: The launcher's own arguments (its :attr:`~micado.launcher.base.Launcher.options`), by name.
    cloud: Mapping[str, Any] = field(default_factory=dict, metadata={"scope": None})

    @classmethod
    def build(cls, given: Mapping[str, Any], launcher: type[Launcher] | None = None,
              defaults: Mapping[str, Any] | None = None) -> CreateSpec:
        """A spec from keyword arguments, refusing names it does not know.

        Args:
            given: the keyword arguments of ``create()`` (``deploy()``).
            launcher: the launcher whose own arguments are taken; ``None`` for a deploy.
            defaults: values for the launcher's own arguments not given (its configuration
                source, e.g. a cloud of ``clouds.yaml``), before the declared defaults.

        Raises:
            InvalidArgument: an unknown name (the valid ones are listed), or one that is
                another launcher's argument.
        """
        common = {name for name, _ in arguments()}
        own = {option.name: option for option in (launcher.options if launcher is not None else ())}
        given = {name: value for name, value in given.items()
                 if name in common or name in own or not _unset_foreign(name, value, launcher)}
        unknown = sorted(set(given) - common - set(own))
        if unknown:
            raise InvalidArgument(_unknown_message(unknown, launcher, sorted(common | set(own))))
        declared = {**dict(arguments()), **own}
        for name, value in (defaults or {}).items():  # the configuration's; an explicit argument overrides it
            if name in declared and value is not None and given.get(name) in (None, declared[name].default):
                given[name] = value
        cloud = {name: option.default if given.get(name) is None else given[name] for name, option in own.items()}
        return cls(**{name: value for name, value in given.items() if name in common}, cloud=cloud)

    def problems(self, launcher: type[Launcher] | None) -> list[str]:
        """Every problem with the arguments for ``launcher`` (``None``: a deploy), each naming its argument."""
        found: list[str] = []
        missing: list[str] = []
        own = launcher.options if launcher is not None else ()
        for option in own:
            value = self.cloud.get(option.name)
            self._check(option, value, option.required, found, missing)
        required = (*_REQUIRED, *launcher.requires) if launcher is not None else ()
        for name, argument in arguments():
            self._check(argument, getattr(self, name), name in required, found, missing)
        found.extend(self._relations())
        if missing:
            hint = launcher.missing_hint(missing) if launcher is not None else ""
            found.insert(0, f"missing argument{'s' if len(missing) > 1 else ''}: {', '.join(missing)}{hint}")
        return found

    @staticmethod
    def _check(argument: Argument, value: Any, required: bool, found: list[str], missing: list[str]) -> None:
        if value is None:
            if required:
                missing.append(argument.name)
            return
        problem = argument.problem(value)
        if problem:
            found.append(f"{argument.name} {problem}")

    def _relations(self) -> list[str]:
        """The problems between arguments, and with values no kind check sees."""
        found = []
        if self.playbook is not None and self.micado_version is not None:
            found.append("give either playbook or micado_version, not both")
        if isinstance(self.micado_user, str) and re.search(r"[\s:]", self.micado_user):
            found.append(f"micado_user {self.micado_user!r} must not contain whitespace or ':'")
        if isinstance(self.micado_password, str) and len(self.micado_password) < 8:
            found.append("micado_password must be at least 8 characters")
        if (self.tls_cert is None) != (self.tls_key is None):
            found.append("give tls_cert and tls_key together (the certificate and its private key)")
        if self.vault_password is not None:
            from micado.config.credentials.vault import check_vault_password

            try:
                check_vault_password(self.vault_password)
            except InvalidArgument as exc:
                found.append(str(exc))
        return found

    def checked(self, launcher: type[Launcher] | None) -> CreateSpec:
        """This spec, once :meth:`problems` finds none.

        Raises:
            InvalidArgument: every problem, in one message (nothing has been made).
        """
        found = self.problems(launcher)
        if found:
            raise InvalidArgument("; ".join(found) if len(found) > 1 else found[0])
        return self

    def login_arguments(self, launcher: type[Launcher]) -> dict[str, Any]:
        """What :meth:`~micado.launcher.base.Launcher.from_arguments` gets: the launcher's own
        arguments (those not for the launch spec) and the region."""
        launch = {option.name for option in launcher.options if option.launch}
        return {"region": self.region, **{name: value for name, value in self.cloud.items() if name not in launch}}

    def launch_arguments(self, launcher: type[Launcher]) -> dict[str, Any]:
        """The launcher's own arguments that are fields of its :class:`~micado.launcher.base.LaunchSpec`."""
        return {option.name: self.cloud.get(option.name) for option in launcher.options if option.launch}


def _unset_foreign(name: str, value: Any, launcher: type[Launcher] | None) -> bool:
    """Whether ``name`` is another launcher's argument left unset (the CLI passes every option)."""
    from micado.launcher.registry import launcher_classes

    return any(option.name == name and value in (None, option.default)
               for cls in launcher_classes() if cls is not launcher for option in cls.options)


def _unknown_message(unknown: list[str], launcher: type[Launcher] | None, valid: list[str]) -> str:
    """Why names are refused: another launcher's argument, or no argument at all."""
    from micado.launcher.registry import launcher_classes

    theirs = {option.name for cls in launcher_classes() if cls is not launcher for option in cls.options}
    foreign = [name for name in unknown if name in theirs]
    if foreign and launcher is not None:
        return "; ".join(f"{name} is not an argument of the {launcher.name} launcher" for name in foreign)
    what = "create()" if launcher is not None else "deploy()"
    return f"unknown argument(s) {', '.join(unknown)}; {what} takes: {', '.join(valid)}"


def arguments(scope: str | None = None) -> list[tuple[str, Argument]]:
    """The spec's own arguments, in order, with their declarations; ``scope=ANY``: those ``deploy()`` takes."""
    found = []
    for spec_field in dataclasses.fields(CreateSpec):
        declared = spec_field.metadata.get("argument")
        if declared is None or (scope == ANY and spec_field.metadata["scope"] != ANY):
            continue
        found.append((spec_field.name, dataclasses.replace(declared, name=spec_field.name)))
    return found


def arguments_doc(scope: str | None = None, *, indent: str = "            ") -> str:
    """The Args entries of ``create()`` (or, ``scope=ANY``, ``deploy()``) for its docstring."""
    lines = []
    for name, argument in arguments(scope):
        lines.append(f"{indent}{name}: {argument.description}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Option:
    """One ``micado master create`` (``deploy``) option, derived from an :class:`~micado.arguments.Argument`."""

    name: str
    help: str
    type: type
    default: Any
    choices: tuple[str, ...] = ()


def options(scope: str | None = None, launchers: Iterable[type[Launcher]] | None = None) -> list[Option]:
    """The command-line options: each launcher's own arguments (default: every registered
    launcher's; one option per name where launchers share one), then the spec's arguments
    meant for the command line (``scope=ANY``: the deploy's, with no launcher's)."""
    if launchers is None:
        from micado.launcher.registry import launcher_classes

        launchers = launcher_classes() if scope != ANY else ()
    found: dict[str, Option] = {}
    declared = [argument for _, argument in arguments(scope)]
    for argument in [*(option for cls in launchers for option in cls.options), *declared]:
        if argument.cli and argument.name not in found:
            found[argument.name] = Option(argument.name, argument.help, argument.value_type, argument.default,
                                          argument.choices)
    return list(found.values())
