"""Cloud credentials: read and check ``credentials-cloud-api.yml``.

The file has the format MiCADO itself uses (ansible-micado's
``sample-credentials-cloud-api.yml``): a ``resource`` list of
``{type: <cloud>, auth_data: {...}}`` entries. For ``nova`` (OpenStack) exactly one
authentication method must be filled in::

    resource:
    - type: nova
      auth_data:
        username: alice            # v3 Password
        password: "..."
        domain_name: Default       # optional (user_domain_name is accepted too)
        project_id: 0123abcd       # optional
        application_credential_id:       # or v3 ApplicationCredential
        application_credential_secret:

For OpenID Connect login (EGI-style federated clouds) the ``nova`` entry names the
Keystone identity provider and takes its ``access_token`` from the ``openid`` block of
``pre_authentication`` through a YAML alias (or holds a literal access token)::

    pre_authentication:
    - type: openid
      auth_data: &OPENID
        url: https://aai.egi.eu/auth/realms/egi/protocol/openid-connect/token   # the token endpoint
        refresh_token: "..."
        client_id: token-portal    # optional: for providers that need a client
        client_secret:             # optional
        scope:                     # optional, e.g. "openid email profile eduperson_entitlement"
    resource:
    - type: nova
      auth_data:
        identity_provider: egi.eu
        access_token: *OPENID
        project_id: 0123abcd       # required for OpenID Connect: the project to scope to

For ``ec2`` (Amazon EC2 and EC2-compatible clouds) both keys of the access key
must be filled in::

    - type: ec2
      auth_data:
        accesskey: AKIA...         # the access key id
        secretkey: "..."           # the secret access key

As in MiCADO's own template, a key left blank (``key:`` with no value) counts as not
given, so a copy of the template with one method filled in is valid. Every problem
is a :class:`~micado.exceptions.CredentialsError` whose message names the file and
the key (``resource[0].auth_data.password``); secret values never appear in messages,
reprs or logs. A file larger than 256 KiB, nested deeper than 64 levels, or whose
YAML aliases expand to more than 100 nodes is refused before it is used (MiCADO's
one alias, ``access_token: *OPENID``, is far below that).

A file encrypted with ``ansible-vault`` (as ansible-micado recommends) is decrypted with
Ansible's own vault code and the password of ``vault_password=`` or of the file
:envvar:`MICADO_VAULT_PASSWORD_FILE` names (:mod:`~micado.config.credentials.vault`); a
Google service-account key for GCE workers is checked by
:mod:`~micado.config.credentials.gce`.

Each launcher reads its own entry (:meth:`micado.launcher.base.Launcher.read_credentials`,
the entry of type :attr:`~micado.launcher.base.Launcher.credential_type`) and gives its
templates; this package finds the entry and checks what every entry shares. The
entries of the built-in launchers are read by :mod:`~micado.config.credentials.keystone`
(the OpenStack entry), :mod:`~micado.config.credentials.access_key` (the EC2 entry) and
:mod:`~micado.config.credentials.openid` (the ``openid`` block of ``pre_authentication``),
with the checks of :mod:`~micado.config.credentials.checks`; the file is read by
:mod:`~micado.config.credentials.reading`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from micado.config import paths
from micado.config.credentials.access_key import EC2Auth
from micado.config.credentials.keystone import ApplicationCredentialAuth, OIDCAuth, PasswordAuth
from micado.config.credentials.openid import OpenIDRefresh
from micado.config.credentials.reading import find_entry, read_document, warn_if_readable_by_others
from micado.exceptions import CredentialsError
from micado.launcher.registry import DEFAULT_LAUNCHER, launcher_class, launcher_classes, launcher_for_credentials

if TYPE_CHECKING:
    from micado.launcher.base import Launcher

__all__ = [
    "PasswordAuth",
    "ApplicationCredentialAuth",
    "EC2Auth",
    "OIDCAuth",
    "OpenIDRefresh",
    "CloudCredentials",
    "SUPPORTED_KINDS",
    "supported_kinds",
    "load_credentials",
    "credentials_template",
    "credentials_file_template",
    "write_credentials_template",
]

#: What :func:`load_credentials` returns for the built-in launchers.
CloudCredentials = PasswordAuth | ApplicationCredentialAuth | OIDCAuth | EC2Auth


def supported_kinds() -> tuple[str, ...]:
    """The ``type`` values :func:`load_credentials` can read: those of the registered launchers."""
    return tuple(dict.fromkeys(cls.credential_type for cls in launcher_classes()))


def __getattr__(name: str) -> Any:
    # SUPPORTED_KINDS was a constant; the launchers registered now decide it.
    if name == "SUPPORTED_KINDS":
        return supported_kinds()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _launcher_reading(kind: str | None, path: Path | None) -> type[Launcher]:
    """The launcher that reads entries of type ``kind`` (``None``: the default launcher's type)."""
    if kind is None:
        return launcher_class(DEFAULT_LAUNCHER)
    launcher = launcher_for_credentials(kind)
    if launcher is None:
        raise CredentialsError(
            f"credentials of type {kind!r} are not supported yet; supported types: "
            f"{', '.join(supported_kinds())}",
            path=path,
            key="resource[].type",
        )
    return launcher


def _entry_template(launcher: type[Launcher], path: Path) -> str:
    template = getattr(launcher, "credentials_template", None)
    if not isinstance(template, str):  # a launcher of another package that gives none
        return f"# {path}\nresource:\n- type: {launcher.credential_type}\n  auth_data:\n"
    return template.format(path=path)


def credentials_template(kind: str | None = None, path: Path | None = None) -> str:
    """Return the YAML a user should write to the credentials file for ``kind``.

    Args:
        kind: the entry's type (``"nova"`` or ``"ec2"``, or that of another registered
            launcher); default: the type of the default launcher (``"nova"``).
        path: the file named in the template's first comment (default: the
            credentials file of the MiCADO dir).

    Returns:
        The template, with placeholders instead of values (the launcher's
        :attr:`~micado.launcher.base.Launcher.credentials_template`).

    Raises:
        CredentialsError: ``kind`` is not supported (the supported kinds are listed).
    """
    return _entry_template(_launcher_reading(kind, path), path or paths.credentials_file())


#: The beginning of the whole file as ``micado init`` writes it; the launchers add the rest.
_FILE_HEADER = """\
# {path}
# Cloud credentials for micado-client and MiCADO (MiCADO's own format).
# Fill in the entry of your cloud; values left blank count as not given.
# Keep this file readable by you only (it was created with mode 0600).

"""


def credentials_file_template(path: Path | None = None) -> str:
    """The whole credentials file as :func:`write_credentials_template` writes it.

    It is MiCADO's own layout (ansible-micado's sample): the ``pre_authentication`` blocks
    the launchers give (commented out), then the ``resource`` list with the
    :attr:`~micado.launcher.base.Launcher.credentials_file_entry` of each registered
    launcher (the first of each credentials type), in registry order.

    Args:
        path: the file named in the first comment (default: the credentials file of
            the MiCADO dir).

    Returns:
        The template: an entry per supported cloud with blank values, comments on how
        to fill them in, and MiCADO's OpenID Connect form commented out.
    """
    by_kind: dict[str, type[Launcher]] = {}
    for launcher in launcher_classes():
        by_kind.setdefault(launcher.credential_type, launcher)
    blocks = dict.fromkeys(cls.credentials_file_pre_authentication for cls in by_kind.values())
    entries = [getattr(cls, "credentials_file_entry", "") for cls in by_kind.values()]
    return (_FILE_HEADER.format(path=path or paths.credentials_file())
            + "".join(block + "\n" for block in blocks if block)
            + "resource:\n" + "\n".join(entry for entry in entries if entry))


def write_credentials_template(path: Path | str | None = None) -> Path:
    """Write a commented template of the whole credentials file, for the user to fill in.

    The file is created with mode 0600 and never replaces an existing one. The template
    has an entry for each supported cloud (``nova``: password or application credential;
    ``ec2``: access key) with blank values, and MiCADO's OpenID Connect form commented out.

    Args:
        path: the file; default ``<MiCADO dir>/credentials-cloud-api.yml`` (the MiCADO
            dir is created 0700 if missing).

    Returns:
        The file written.

    Raises:
        CredentialsError: the file already exists (``.path`` names it), or cannot be written.
        InvalidArgument: the MiCADO dir cannot be used (see :func:`micado.config.paths.ensure_dir`).
    """
    from micado.config.files import write_private

    if path is None:
        paths.ensure_dir()
        file = paths.credentials_file()
    else:
        file = Path(path).expanduser()
    try:
        written = write_private(file, credentials_file_template(file), exclusive=True)
    except OSError as exc:
        raise CredentialsError(f"cannot write the credentials template {file}: {paths.os_reason(exc)}",
                               path=file) from None
    if not written:
        raise CredentialsError(f"{file} already exists; edit it, or move it away first", path=file)
    return file


def load_credentials(kind: str | None = None, path: Path | str | None = None, *,
                     vault_password: str | None = None) -> CloudCredentials:
    """Read the cloud credentials file and return the checked credentials of one cloud type.

    The entry is found here and read by the launcher whose
    :attr:`~micado.launcher.base.Launcher.credential_type` is ``kind``
    (:meth:`~micado.launcher.base.Launcher.read_credentials`).

    Args:
        kind: the ``type`` of the ``resource`` entry to use (``"nova"`` for OpenStack,
            ``"ec2"`` for EC2, or that of another registered launcher); default: the
            type of the default launcher (``"nova"``).
        path: the file; default ``<MiCADO dir>/credentials-cloud-api.yml``.

    Returns:
        :class:`PasswordAuth`, :class:`ApplicationCredentialAuth` or
        :class:`OIDCAuth` for ``nova``; :class:`EC2Auth` for ``ec2``; what its
        launcher reads for another type.

    Raises:
        CredentialsError: ``kind`` is not supported, or the file is missing,
            unreadable, larger than 256 KiB, not YAML, nested deeper
            than 64 levels, has aliases that expand to more than 100 nodes (one alias
            of the OpenID ``auth_data``, as in MiCADO's format, is fine), has no
            ``resource`` list or no (or several)
            entries of ``kind``, or its ``auth_data`` has half a pair, both
            methods, no method, an empty value or a value that is not text; for
            OpenID Connect, the ``access_token`` alias points at no ``openid`` block
            of ``pre_authentication``, or that block lacks ``url`` or
            ``refresh_token``, has a ``url`` that is not https (http only on
            loopback), a ``client_secret`` without ``client_id``, or unknown keys.
            A vaulted file without a password, or with a wrong one. ``.path`` and
            ``.key`` say where. Nothing is sent anywhere.
    """
    file = Path(path).expanduser() if path is not None else paths.credentials_file()
    launcher = _launcher_reading(kind, file)
    template = _entry_template(launcher, file)
    document = read_document(file, template, vault_password)
    auth_data, where = find_entry(document, file, launcher.credential_type, template)
    warn_if_readable_by_others(file)
    credentials: CloudCredentials = launcher.read_credentials(auth_data, file, where, document)
    return credentials
