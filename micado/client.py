"""The :class:`MicadoClient` facade: it wires the parts together and does no I/O itself."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from micado.exceptions import InvalidArgument, MicadoException
from micado.launcher.registry import (
    BUILTIN_LAUNCHERS,
    DEFAULT_LAUNCHER,
    canonical_name,
    launcher_class,
    launcher_names,
)

if TYPE_CHECKING:
    from micado.api.client import SubmitterClient
    from micado.models.application import Applications
    from micado.master.facade import MicadoMaster

__all__ = ["MicadoClient", "LAUNCHERS"]

#: The built-in cloud interfaces a master can be created on (with those of installed
#: packages and of :func:`~micado.launcher.registry.register_launcher`:
#: :func:`~micado.launcher.registry.launcher_names`).
LAUNCHERS = tuple(BUILTIN_LAUNCHERS)

Verify = bool | str | os.PathLike[str]


class MicadoClient:
    """The entry point of micado-client.

    Two ways to use it:

    * With a launcher, to create a MiCADO master on a cloud, or attach to one
      created earlier, and then manage its applications::

          client = MicadoClient(launcher="openstack")
          client.master.create(auth_url=..., project_id=..., image=..., flavor=...,
                               network=..., keypair=..., security_group=...)
          client.applications.list()
          client.master.destroy()

    * With the endpoint of an existing master, to manage its applications::

          client = MicadoClient(endpoint="https://micado/toscasubmitter/", version="v2.0",
                                verify=False, auth=("ssl_user", "ssl_pass"))
          client.applications.list()

    Constructing a client makes no request and touches no file.

    Args:
        endpoint: base URL of the TOSCA Submitter, e.g. ``https://<ip>/toscasubmitter/``.
        version: API version appended to the endpoint (``v2.0``).
        verify: ``True`` to check the server certificate against the system CAs,
            a path to a CA bundle or the master's certificate, or ``False`` to not
            check it (a warning is issued once).
        auth: ``(user, password)`` of the MiCADO web user (HTTP basic auth).
        launcher: the cloud interface for ``client.master``: ``"openstack"`` or ``"ec2"``
            (the ``ec2`` extra: boto3), in any case (``"OpenStack"``).
        timeout: seconds for quick calls (list, get); ``None`` keeps the default.
        deploy_timeout: seconds for calls that deploy (create, update, delete);
            ``None`` keeps the default.
        installer: ``"ansible"``, the only installer (accepted for code written for
            the official micado-client 0.12).
        cloud: with ``launcher="openstack"``, a cloud of openstacksdk's ``clouds.yaml``
            (read by openstacksdk's own loader: ``OS_CLIENT_CONFIG_FILE``, ``./clouds.yaml``,
            ``~/.config/openstack/clouds.yaml``, ``/etc/openstack``); its Keystone URL,
            project, region and login are used when ``create()`` does not give them.

    Raises:
        InvalidArgument: the arguments contradict each other or are malformed.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        version: str = "v2.0",
        verify: Verify = True,
        auth: tuple[str, str] | None = None,
        launcher: str | None = None,
        *,
        timeout: float | None = None,
        deploy_timeout: float | None = None,
        installer: str = "ansible",
        cloud: str | None = None,
    ) -> None:
        if installer != "ansible":
            raise InvalidArgument(f"installer={installer!r} is not supported; the only installer is 'ansible' "
                                  "(ansible-micado's playbooks)")
        given = launcher
        if isinstance(launcher, str):
            launcher = canonical_name(launcher)
        if launcher is not None and launcher not in BUILTIN_LAUNCHERS and launcher not in launcher_names():
            raise InvalidArgument(
                f"launcher={given!r} is not supported; choose one of: {', '.join(launcher_names())}"
            )
        if cloud is not None:
            _check_cloud(cloud, launcher)
        if endpoint is None and launcher is None:
            raise InvalidArgument(
                "give either endpoint= (an existing master's API) or launcher= (to create one)"
            )
        self._launcher_name = launcher
        self._cloud = cloud
        self._api_options: dict[str, Any] = {
            "version": version,
            "verify": verify,
            "auth": auth,
            "timeout": timeout,
            "deploy_timeout": deploy_timeout,
        }
        self._api: SubmitterClient | None = None
        self._master: MicadoMaster | None = None
        if endpoint is not None:
            self._api = self._make_api(endpoint, **self._api_options)

    @staticmethod
    def _make_api(endpoint: str, **options: Any) -> SubmitterClient:
        from micado.api.client import SubmitterClient

        return SubmitterClient(endpoint, **{k: v for k, v in options.items() if v is not None})

    @classmethod
    def from_env(cls, environment: Mapping[str, str] | None = None) -> MicadoClient:
        """Build a client for an existing master from environment variables.

        Reads ``MICADO_API_ENDPOINT`` (required), ``MICADO_API_VERSION`` (default
        ``v2.0``), ``MICADO_API_USER`` and ``MICADO_API_PASSWORD`` (basic auth, both or
        neither) and ``MICADO_API_CERT`` (the master's certificate; when absent the
        system CAs are used, and ``MICADO_API_VERIFY=false`` turns checking off).

        Args:
            environment: the mapping to read; ``os.environ`` when ``None``.

        Raises:
            InvalidArgument: a variable is missing or malformed; the message names it.
        """
        env = os.environ if environment is None else environment
        endpoint = env.get("MICADO_API_ENDPOINT")
        if not endpoint:
            raise InvalidArgument("MICADO_API_ENDPOINT is not set (e.g. https://<ip>/toscasubmitter/)")
        user, password = env.get("MICADO_API_USER"), env.get("MICADO_API_PASSWORD")
        if (user is None) != (password is None):
            missing = "MICADO_API_PASSWORD" if password is None else "MICADO_API_USER"
            raise InvalidArgument(f"{missing} is not set; set both MICADO_API_USER and MICADO_API_PASSWORD")
        verify: Verify = True
        flag = env.get("MICADO_API_VERIFY", "").strip().lower()
        if flag not in ("", "1", "true", "yes", "0", "false", "no"):
            raise InvalidArgument(
                f"MICADO_API_VERIFY={env['MICADO_API_VERIFY']!r} is not one of true, false, yes, no, 1, 0"
            )
        if env.get("MICADO_API_CERT"):
            verify = env["MICADO_API_CERT"]
        elif flag in ("0", "false", "no"):
            verify = False
        return cls(
            endpoint=endpoint,
            version=env.get("MICADO_API_VERSION") or "v2.0",
            verify=verify,
            auth=(user, password) if user is not None and password is not None else None,
        )

    @classmethod
    def from_existing(
        cls,
        endpoint: str,
        version: str = "v2.0",
        username: str = "admin",
        password: str = "admin",
        cert: Verify | None = None,
        *,
        verify: Verify | None = None,
        timeout: float | None = None,
        deploy_timeout: float | None = None,
    ) -> MicadoClient:
        """A client for an existing master, as the official micado-client 0.12 builds it.

        ``MicadoClient.from_existing(endpoint, version, username, password, cert)`` is the
        official client's call (0.12.6 and later); ``verify=`` is accepted as the name this
        library uses. Unlike 0.12, the certificate is checked unless you say otherwise:
        pass the master's certificate (``cert=`` or ``verify=`` its path), or ``False`` to
        not check it. A self-signed master refuses the default with a
        :class:`~micado.exceptions.TLSError` that says so.

        Args:
            endpoint: base URL of the TOSCA Submitter, e.g. ``https://<ip>/toscasubmitter/``.
            version: API version (``v2.0``).
            username: the MiCADO web user (0.12's default ``admin``).
            password: its password (0.12's default ``admin``).
            cert: the official client's name for ``verify``.
            verify: ``True`` (the default: the system CAs), a certificate or CA bundle path, or ``False``.
            timeout: seconds for quick calls; ``None`` keeps the default.
            deploy_timeout: seconds for calls that deploy; ``None`` keeps the default.

        Raises:
            InvalidArgument: both ``cert`` and ``verify`` are given, or an argument is malformed.
        """
        if cert is not None and verify is not None:
            raise InvalidArgument("give cert= (the official client's name) or verify=, not both")
        chosen: Verify = True
        if cert is not None:
            chosen = cert
        elif verify is not None:
            chosen = verify
        return cls(endpoint=endpoint, version=version, verify=chosen, auth=(username, password),
                   timeout=timeout, deploy_timeout=deploy_timeout)

    @property
    def applications(self) -> Applications:
        """The applications on the master (:class:`~micado.models.application.Applications`).

        Raises:
            MicadoException: there is no endpoint and no master has been created or attached.
        """
        from micado.models.application import Applications

        api = self._api
        if api is None and self._master is not None:
            api = self._master.api
        if api is None:
            raise MicadoException(
                "No MiCADO master: create or attach one with client.master, or give endpoint="
            )
        return Applications(client=api)

    @property
    def master(self) -> MicadoMaster:
        """The master managed through the launcher (:class:`~micado.master.facade.MicadoMaster`).

        Raises:
            MicadoException: the client was built without ``launcher=``.
        """
        if self._launcher_name is None:
            raise MicadoException(f'No launcher defined: use MicadoClient(launcher="{DEFAULT_LAUNCHER}")')
        if self._master is None:
            from micado.master.facade import MicadoMaster

            self._master = MicadoMaster(launcher=self._launcher_name, api_options=self._api_options,
                                        cloud=self._cloud)
        return self._master

    @property
    def micado(self) -> MicadoMaster:
        """The same as :attr:`master`: the name the official micado-client 0.12 uses.

        Raises:
            MicadoException: the client was built without ``launcher=``.
        """
        return self.master

    def close(self) -> None:
        """Close the HTTP connections this client holds."""
        if self._api is not None:
            self._api.close()

    def __enter__(self) -> MicadoClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._api is not None:
            return f"<MicadoClient endpoint={self._api.base_url!r}>"
        master = self._master
        if master is not None and master.id is not None:
            return f"<MicadoClient launcher={self._launcher_name!r} master={master.id!r} at {master.endpoint!r}>"
        cloud = f" cloud={self._cloud!r}" if self._cloud is not None else ""
        return f"<MicadoClient launcher={self._launcher_name!r}{cloud}>"

    def _repr_html_(self) -> str:
        """A small table for notebooks: where the client points; never a password."""
        import html

        master = self._master
        rows = [("endpoint", self._api.base_url if self._api is not None else None),
                ("launcher", self._launcher_name), ("cloud", self._cloud),
                ("master", master.id if master is not None else None),
                ("master endpoint", master.endpoint if master is not None else None)]
        cells = "".join(f"<tr><th>{html.escape(name)}</th><td>{html.escape(str(value))}</td></tr>"
                        for name, value in rows if value is not None)
        return f"<b>MicadoClient</b><table>{cells}</table>"


def _check_cloud(cloud: object, launcher: str | None) -> None:
    """``cloud=`` names a login of the launcher's own configuration (OpenStack: ``clouds.yaml``).

    Raises:
        InvalidArgument: it is not a name, or the launcher reads no configuration of its own.
    """
    source = launcher_class(launcher).config_source if launcher is not None else ""
    if source and isinstance(cloud, str) and cloud.strip():
        return
    readers = [cls for cls in map(launcher_class, BUILTIN_LAUNCHERS) if cls.config_source]
    where = " or ".join(f'in {cls.config_source}, with launcher="{cls.name}"' for cls in readers)
    raise InvalidArgument(f"cloud={cloud!r}: give the name of a cloud {where}")
