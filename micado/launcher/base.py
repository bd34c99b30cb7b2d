"""The launcher interface: start the master VM on a cloud, report its state, remove it.

A launcher knows one cloud API and nothing of MiCADO. The master model
(:mod:`micado.master`) gives it a :class:`LaunchSpec`, stores the returned
:class:`LaunchedVM` (plain JSON-able data) in its record, and later hands that record
back to :meth:`Launcher.delete`. The contract every launcher keeps:

* :meth:`Launcher.validate` rejects bad input before any request to the cloud;
* :meth:`Launcher.launch` is a transaction: when any step fails it undoes every step
  done so far (server, floating IP it allocated, association) and re-raises the
  original typed error (a failing undo is logged and noted on that error);
* every wait has a deadline and goes through :func:`micado.progress.wait_until`;
* cloud SDK exceptions never leak: they become :class:`~micado.exceptions.LaunchError`
  (or :class:`~micado.exceptions.MicadoTimeout` for a deadline).

The module is light: it imports no cloud SDK, so an EC2 launcher can share it.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from micado.exceptions import CredentialsError, InvalidArgument, LaunchError
from micado.progress import ProgressCallback

if TYPE_CHECKING:
    from pathlib import Path

    from micado.arguments import Argument
    from micado.undo import UndoStack

__all__ = [
    "MarkedResource",
    "Launcher",
    "LaunchSpec",
    "LaunchedVM",
    "Removal",
    "MASTER_NAME_PREFIX",
    "new_master_name",
    "cloud_init_user_data",
    "check_spec",
    "pick",
    "LAUNCH_TAG",
    "STORE_TAG",
    "LAUNCHED_TAG",
    "CREATOR_TAG",
    "launch_marks",
    "creator_mark",
    "ConfiguredLogin",
]

#: Every master server is called ``MiCADO-Master-<hex>``.
MASTER_NAME_PREFIX = "MiCADO-Master-"
#: Nova limits base64-encoded user data to 65535 bytes.
MAX_USER_DATA_BASE64 = 65535
#: The marks every server and address a launch makes carries (OpenStack server metadata,
#: EC2 tags; an OpenStack floating IP has them in its description): the launch's random
#: token, the identity of the MiCADO dir (store) that launched it, when (UTC, ISO 8601)
#: and which process on which host (see :func:`creator_mark`). ``cleanup`` acts only on
#: what carries its own store identity; an earlier micado-client set the token alone.
LAUNCH_TAG = "micado-client-launch"
STORE_TAG = "micado-client-store"
LAUNCHED_TAG = "micado-client-launched"
CREATOR_TAG = "micado-client-creator"
_STORE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_PUBLIC_KEY_RE = re.compile(r"^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521)|sk-\S+) [A-Za-z0-9+/=]+( .*)?$")


def new_master_name() -> str:
    """Return a fresh server name, ``MiCADO-Master-<8 hex digits>``."""
    return MASTER_NAME_PREFIX + secrets.token_hex(4)


def creator_mark() -> str:
    """Which process launches, as a mark: its :func:`~micado._processes.identity` and a hash of the host name.

    ``<pid>@<start time>@<12 hex digits>``: short enough for any cloud's tag, and enough
    to tell, on this host, whether the launching process still runs.
    """
    import hashlib
    import os
    import socket

    from micado._processes import identity

    host = hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:12]
    return f"{identity(os.getpid()) or os.getpid()}@{host}"


def launch_marks(spec: LaunchSpec) -> dict[str, str]:
    """The marks a launch puts on what it makes: token, store identity, launch time, creator."""
    from datetime import UTC, datetime

    marks = {LAUNCH_TAG: spec.launch_token,
             LAUNCHED_TAG: datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
             CREATOR_TAG: creator_mark()}
    if spec.store_id:
        marks[STORE_TAG] = spec.store_id
    return marks


def cloud_init_user_data(public_key: str) -> str:
    """Return cloud-init user data that authorises ``public_key`` for the image's default user.

    Args:
        public_key: one OpenSSH public key line (``ecdsa-sha2-nistp256 AAAA... comment``).

    Returns:
        A ``#cloud-config`` document.

    Raises:
        InvalidArgument: the text is not a single OpenSSH public key.
    """
    key = public_key.strip()
    if "\n" in key or not _PUBLIC_KEY_RE.match(key):
        raise InvalidArgument("public_key must be one OpenSSH public key line (e.g. 'ecdsa-sha2-nistp256 AAAA...')")
    # A JSON string is valid YAML and quotes anything the key comment may hold.
    return f"#cloud-config\nssh_authorized_keys:\n  - {json.dumps(key)}\n"


@dataclass(frozen=True, kw_only=True)
class LaunchSpec:
    """What to start: every cloud resource by name or id, and the VM's user data.

    Attributes:
        image: the image (name or id).
        flavor: the flavor / instance type (name or id).
        network: the network the VM is attached to (name or id).
        keypair: the cloud key pair to inject (name), or ``None`` for none; the
            client's own key arrives through ``user_data``.
        security_group: the security group (name or id); ``all`` as in ``create()``.
        user_data: cloud-init user data (see :func:`cloud_init_user_data`).
        name: the server name; a fresh ``MiCADO-Master-<hex>`` by default.
        floating_network: the external network to allocate a floating IP from when
            no unattached one exists; ``None`` picks the only external network.
        launch_token: the random marker the server carries (metadata or tag), so an
            interrupted launch can be found; known before the launch, so the master
            records it first.
        store_id: the identity of the MiCADO dir that launches
            (:meth:`~micado.config.store.MasterStore.identity`), marked on everything
            the launch makes; ``None`` marks none (``cleanup`` then never takes it as its own).
    """

    image: str
    flavor: str
    network: str
    keypair: str | None = None
    security_group: str = "all"
    user_data: str = ""
    name: str = field(default_factory=new_master_name)
    floating_network: str | None = None
    launch_token: str = field(default_factory=lambda: secrets.token_hex(8))
    store_id: str | None = None


@dataclass(kw_only=True)
class LaunchedVM:
    """A launched VM, as plain data the master record stores (see :meth:`to_dict`).

    Attributes:
        server_id: the cloud's id of the server (the master id).
        name: the server name.
        ip: the public (floating) address.
        floating_ip_id: the cloud's id of that floating IP, if any.
        floating_ip_allocated: ``True`` when the launcher allocated the floating IP
            (so deleting the VM releases it); ``False`` when it reused a free one.
        private_ip: the VM's address on its network, when known.
        launcher: the launcher's name (``"openstack"``).
    """

    server_id: str
    name: str
    ip: str
    floating_ip_id: str | None = None
    floating_ip_allocated: bool = False
    private_ip: str | None = None
    launcher: str = "openstack"

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON/YAML-able dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LaunchedVM:
        """Build from :meth:`to_dict` output; unknown keys are ignored (newer records).

        Raises:
            InvalidArgument: ``server_id``, ``name`` or ``ip`` is missing.
        """
        known = {f.name for f in fields(cls)}
        missing = [k for k in ("server_id", "name", "ip") if not data.get(k)]
        if missing:
            raise InvalidArgument(f"launched VM record lacks {', '.join(missing)}; it has: {', '.join(sorted(data))}")
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Removal:
    """What :meth:`Launcher.delete` did.

    Attributes:
        server_id: the server concerned.
        server_found: ``False`` when the server was already gone (the caller may warn).
        floating_ip_released: ``True`` when a floating IP we had allocated was released.
        warnings: things worth telling the user (already gone, left in place...).
    """

    server_id: str
    server_found: bool = True
    floating_ip_released: bool = False
    warnings: list[str] = field(default_factory=list)


class ConfiguredLogin(Protocol):
    """A login read from the user's own configuration (:meth:`Launcher.configured_login`)."""

    @property
    def name(self) -> str:
        """The name it was found under, recorded with the master (``MicadoClient(cloud=NAME)``)."""

    @property
    def credentials(self) -> Any:
        """What :meth:`Launcher.from_arguments` takes as credentials."""

    def create_defaults(self) -> dict[str, Any]:
        """The ``create()`` arguments the configuration gives (explicit arguments override them)."""

    def credentials_file_text(self) -> str:
        """The login in MiCADO's ``credentials-cloud-api.yml`` format, for the master."""


@dataclass(frozen=True, kw_only=True)
class MarkedResource:
    """A server or address that a launch of micado-client made (it carries our marks).

    Attributes:
        kind: ``"server"`` or ``"address"`` (a floating IP or Elastic IP we allocated).
        id: the cloud's id of it.
        name: the master name it was made for (``MiCADO-Master-<hex>``).
        token: the launch token (servers only).
        address: the IP address (addresses only).
        attached_to: for an address, the server it is attached to, if any.
        store: the store identity in its marks; ``None`` when it has none (made by
            an earlier micado-client, or marked by other tooling).
        launched: when it was launched, from its marks (ISO 8601, UTC); ``None`` if unknown.
        creator: the :func:`creator_mark` of the process that launched it, if marked.
    """

    kind: str
    id: str
    name: str
    token: str | None = None
    address: str | None = None
    attached_to: str | None = None
    store: str | None = None
    launched: str | None = None
    creator: str | None = None


class Launcher(ABC):
    """Starts, inspects and removes the master VM on one cloud.

    Constructing a launcher makes no request; the first call that needs the cloud
    connects. Implementations: :class:`micado.launcher.openstack.OpenStackLauncher`.
    """

    #: The ``create()`` arguments of this cloud only (``auth_url``, ``endpoint_url``...),
    #: beside those every cloud takes (:class:`~micado.master.spec.CreateSpec`); the
    #: ``micado master create`` options and the class docstring are made from them.
    options: ClassVar[tuple[Argument, ...]] = ()
    #: The arguments every cloud takes that this one cannot do without, beyond ``image``
    #: and ``flavor`` (OpenStack: ``network``, ``keypair``).
    requires: ClassVar[tuple[str, ...]] = ()
    #: The configuration of the user's own that this cloud's tools read, for
    #: ``MicadoClient(cloud=NAME)`` (OpenStack: ``clouds.yaml``); ``""`` for none.
    config_source: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("options")
        if own and cls.__doc__ and "create() arguments of this cloud" not in cls.__doc__:
            listed = "".join(f"\n    * ``{option.name}``: {option.description}" for option in own)
            cls.__doc__ = f"{cls.__doc__.rstrip()}\n\n    create() arguments of this cloud:\n{listed}\n"

    @classmethod
    def missing_hint(cls, missing: list[str]) -> str:
        """What to add to the "missing argument" message when ``missing`` are not given."""
        return ""

    @classmethod
    def configured_login(cls, name: str | None, *, credentials_file_exists: bool) -> ConfiguredLogin | None:
        """The login from the user's own configuration (:attr:`config_source`), when it is the one to use.

        Args:
            name: the name given as ``MicadoClient(cloud=NAME)`` or recorded with the
                master; ``None`` when none was named.
            credentials_file_exists: whether the MiCADO credentials file exists (it then
                comes first, unless a name was given).

        Returns:
            ``None`` to log in with the credentials file.

        Raises:
            InvalidArgument: a name was given, and this cloud reads no configuration of its own.
            CredentialsError: the configuration is unusable.
        """
        if name is not None:
            raise InvalidArgument(f"cloud={name!r}: the {cls.name} launcher reads no configuration of its own; "
                                  "its login comes from the credentials file")
        return None

    #: The launcher's name, stored in master records.
    name: ClassVar[str]
    #: The ``type`` of the credentials-file entry it logs in with (``"nova"``, ``"ec2"``).
    credential_type: ClassVar[str]
    #: The template of that entry, as :func:`micado.config.credentials.credentials_template`
    #: returns it: a whole file with just this entry, placeholders for the values, and
    #: ``{path}`` (the file's path) in its first comment.
    credentials_template: ClassVar[str]
    #: The entry in the whole-file template ``micado init`` writes
    #: (:func:`micado.config.credentials.credentials_file_template`): a comment, then the
    #: ``- type: ...`` item of the ``resource`` list, values left blank; inserted as it is.
    credentials_file_entry: ClassVar[str]
    #: What that whole-file template shows of ``pre_authentication`` for this launcher
    #: (commented-out YAML and its comments), if anything; the same block given by
    #: several launchers is written once.
    credentials_file_pre_authentication: ClassVar[str] = ""

    @classmethod
    def read_credentials(cls, auth_data: Mapping[str, Any], file: Path, where: str, document: Any) -> Any:
        """Check the ``auth_data`` of this launcher's credentials-file entry and build its credentials.

        :func:`micado.config.credentials.load_credentials` finds the one ``resource`` entry
        of type :attr:`credential_type` and calls this; what it returns is what
        :meth:`from_arguments` and :meth:`from_record` get as ``credentials``. The checks
        of :mod:`micado.config.credentials.checks` help. Nothing may be sent anywhere.

        Args:
            auth_data: the entry's ``auth_data`` mapping.
            file: the credentials file, for messages.
            where: the key path of ``auth_data`` in the file (``resource[0].auth_data``).
            document: the whole file (an entry may refer to its ``pre_authentication``).

        Raises:
            CredentialsError: the entry is not right; the message names ``file`` and the
                key, never a secret value. By default: the launcher reads no entry.
        """
        raise CredentialsError(
            f"{file}: {where}: launcher {cls.name!r} reads no credentials-file entry "
            f"(its class {cls.__name__} does not define read_credentials)",
            path=file, key=where,
        )

    @classmethod
    @abstractmethod
    def from_arguments(cls, credentials: Any, arguments: Mapping[str, Any]) -> Launcher:
        """The launcher for the cloud arguments of ``create()`` that belong to it.

        Args:
            credentials: what :func:`micado.config.credentials.load_credentials`
                returned for :attr:`credential_type`.
            arguments: its own arguments (:attr:`options`, those not for the launch spec)
                and ``region``: :meth:`micado.master.spec.CreateSpec.login_arguments`.

        Raises:
            InvalidArgument: an argument is missing or malformed (no request is made).
        """

    @abstractmethod
    def record_fields(self) -> dict[str, Any]:
        """What a master record must keep to reach this cloud again (never a secret)."""

    @classmethod
    @abstractmethod
    def from_record(cls, credentials: Any, fields: Mapping[str, Any]) -> Launcher:
        """The launcher a record was made with, from its :meth:`record_fields`.

        Raises:
            InvalidArgument: a field is missing or malformed.
        """

    @abstractmethod
    def validate(self, spec: LaunchSpec) -> None:
        """Check the spec without contacting the cloud.

        Raises:
            InvalidArgument: a field is empty or malformed; the message names it.
        """

    @abstractmethod
    def launch(
        self, spec: LaunchSpec, *, timeout: float = 600.0, progress: ProgressCallback | None = None
    ) -> LaunchedVM:
        """Start a VM from ``spec``, wait until it runs, give it a public address.

        Args:
            spec: what to start.
            timeout: seconds for the whole launch, waits included.
            progress: receives ``("launch", message)`` events.

        Returns:
            The running VM.

        Raises:
            InvalidArgument: the spec is invalid (nothing was requested).
            LaunchError: the cloud refused or failed a step; everything launch made is undone.
            MicadoTimeout: the VM was not running in time; everything launch made is undone.
        """

    def _transaction(self, spec: LaunchSpec, timeout: float, progress: ProgressCallback | None) -> LaunchedVM:
        """The launch as one transaction: check the spec, one deadline, undo everything on any failure.

        The launcher's own steps are :meth:`_launch`; each registers its undo on the
        stack before the request whose answer may be lost.
        """
        from micado import checks
        from micado.progress import as_callback
        from micado.undo import UndoStack

        self.validate(spec)
        checks.seconds("timeout", timeout)
        report = as_callback(progress)
        deadline = time.monotonic() + timeout
        undo = UndoStack("the launch", report=lambda step: report("launch", f"undoing: {step}"))
        try:
            return self._launch(spec, deadline, float(timeout), report, undo)
        except BaseException as exc:
            undo.unwind(exc)
            raise

    def _launch(self, spec: LaunchSpec, deadline: float, total: float, report: ProgressCallback,
                undo: UndoStack) -> LaunchedVM:
        """The launcher's steps of :meth:`launch` (see :meth:`_transaction`)."""
        raise NotImplementedError

    @abstractmethod
    def state(self, server_id: str) -> str | None:
        """Return the server's status (``"ACTIVE"``, ``"BUILD"``, ``"ERROR"``...), ``None`` if gone.

        Raises:
            LaunchError: the cloud could not be asked.
        """

    @abstractmethod
    def delete(
        self,
        vm: LaunchedVM | str,
        *,
        floating_ip_id: str | None = None,
        floating_ip_allocated: bool = False,
        timeout: float = 300.0,
        progress: ProgressCallback | None = None,
    ) -> Removal:
        """Remove a VM and what its launch allocated, and wait until it is gone.

        A server that is already gone is not an error: :attr:`Removal.server_found`
        says so.

        Args:
            vm: the launched VM, or a server id (then give the floating IP details).
            floating_ip_id: with a server id: its floating IP's id.
            floating_ip_allocated: with a server id: whether the launch allocated it.
            timeout: seconds to wait until the server is gone.
            progress: receives ``("delete", message)`` events.

        Raises:
            LaunchError: the cloud refused or failed a step.
            MicadoTimeout: the server was still there at the deadline.
        """

    @abstractmethod
    def marked(self) -> list[MarkedResource]:
        """Every server and address on the cloud that carries micado-client's launch marks.

        Raises:
            LaunchError: the cloud could not be asked.
        """

    @abstractmethod
    def remove_marked(self, resource: MarkedResource, *, timeout: float = 300.0,
                      progress: ProgressCallback | None = None) -> None:
        """Remove one resource :meth:`marked` found (a server is waited for until gone).

        Raises:
            LaunchError: the cloud refused or failed a step.
            MicadoTimeout: a server was still there at the deadline.
        """

    def close(self) -> None:  # noqa: B027 - not abstract: a launcher without connections keeps this no-op
        """Release connections; the launcher reconnects if used again."""

    def __enter__(self) -> Launcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def check_spec(spec: LaunchSpec) -> None:
    """The cloud-independent checks of a :class:`LaunchSpec` (no request is made).

    Raises:
        InvalidArgument: a field is empty or malformed; the message names the field.
    """
    if not isinstance(spec, LaunchSpec):
        raise InvalidArgument(f"expected a LaunchSpec, got {type(spec).__name__}")
    for name in ("image", "flavor", "network", "security_group"):
        value = getattr(spec, name)
        if not isinstance(value, str) or not value.strip():
            raise InvalidArgument(f"{name} must be a non-empty name or id, got {value!r}")
    for name in ("keypair", "floating_network"):
        value = getattr(spec, name)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise InvalidArgument(f"{name} must be a non-empty name or id, or None; got {value!r}")
    if not isinstance(spec.name, str) or not _NAME_RE.match(spec.name):
        raise InvalidArgument(
            f"name {spec.name!r} is not a valid server name (letters, digits, '.', '_', '-'; at most 63)"
        )
    if spec.store_id is not None and (not isinstance(spec.store_id, str) or not _STORE_ID_RE.match(spec.store_id)):
        raise InvalidArgument(f"store_id must be 1 to 64 letters, digits, '_' or '-', or None; got {spec.store_id!r}")
    if not isinstance(spec.user_data, str):
        raise InvalidArgument(f"user_data must be text, got {type(spec.user_data).__name__}")
    encoded = len(base64.b64encode(spec.user_data.encode("utf-8")))
    if encoded > MAX_USER_DATA_BASE64:
        raise InvalidArgument(
            f"user_data is too large: {encoded} bytes base64-encoded, the limit is {MAX_USER_DATA_BASE64}"
        )


def pick_all(lookups: Iterable[tuple[str, str, Iterable[tuple[str, str]]]]) -> list[str]:
    """:func:`pick` for several resources at once: every unknown or ambiguous one is reported together.

    Args:
        lookups: ``(kind, wanted, candidates)`` for each resource.

    Returns:
        Their ids, in the order given.

    Raises:
        LaunchError: one or more lookups failed; the message has each failure (with the
            names that exist), so a user fixes them all in one go.
    """
    found: list[str] = []
    problems: list[str] = []
    for kind, wanted, candidates in lookups:
        try:
            found.append(pick(kind, wanted, candidates))
        except LaunchError as exc:
            problems.append(str(exc))
    if problems:
        raise LaunchError("; ".join(problems))
    return found


def pick(kind: str, wanted: str, candidates: Iterable[tuple[str, str]]) -> str:
    """Resolve a resource given by id or name among ``(id, name)`` pairs.

    An exact id wins; otherwise the name must match exactly one candidate.

    Args:
        kind: what is looked up, for messages (``"image"``).
        wanted: the id or name the user gave.
        candidates: ``(id, name)`` of every resource of that kind.

    Returns:
        The id of the resource.

    Raises:
        LaunchError: nothing has that id or name (the message lists the names that
            exist), or several resources have that name (the message lists their ids).
    """
    items = list(candidates)
    for item_id, _ in items:
        if item_id == wanted:
            return item_id
    named = [item_id for item_id, name in items if name == wanted]
    if len(named) == 1:
        return named[0]
    if named:
        raise LaunchError(
            f"ambiguous {kind} '{wanted}': {len(named)} {kind}s have that name "
            f"(ids: {', '.join(sorted(named))}); give the id instead"
        )
    names = sorted({name or item_id for item_id, name in items})
    raise LaunchError(f"unknown {kind} '{wanted}'; available: {', '.join(names) if names else '(none)'}")
