"""The OpenStack launcher's session: Keystone v3 login, the SDK clients, and errors translated.

OpenID Connect credentials log in through Keystone federation: the refresh token is
exchanged for an access token (:mod:`micado.launcher.openstack.openid_token`), which
keystoneauth's ``OidcAccessToken`` plugin sends to
``/v3/OS-FEDERATION/identity_providers/<idp>/protocols/openid/auth`` for an unscoped
token, then rescopes to the project. The access token lives in that plugin only.

All three SDKs share one authenticated keystoneauth1 session (see
:mod:`micado.launcher.openstack`); nothing of theirs is imported before the first
call, and none of their exceptions leaves here: :meth:`OpenStackSession._cloud` turns
them into :class:`~micado.exceptions.LaunchError` naming what was being done.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from micado.exceptions import InvalidArgument, LaunchError, MicadoException, server_text

if TYPE_CHECKING:
    from micado.config.credentials import ApplicationCredentialAuth, OIDCAuth, PasswordAuth

__all__ = ["OpenStackSession", "normalise_auth_url"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class OpenStackSession:
    """Login and SDK clients of an OpenStack launcher (a mixin: the launcher sets the attributes)."""

    auth_url: str
    credentials: PasswordAuth | ApplicationCredentialAuth | OIDCAuth
    project_id: str | None
    user_domain_name: str | None
    region: str | None
    request_timeout: float
    verify: bool | str
    _session: Any
    _sdk: Any
    _nova: Any

    #: keystoneauth's name of the federation protocol (the ``protocols/<name>/auth`` route).
    OIDC_PROTOCOL = "openid"

    def _login_kind(self) -> str:
        from micado.config.credentials import ApplicationCredentialAuth, OIDCAuth

        if isinstance(self.credentials, OIDCAuth):
            return "openid"
        return "application-credential" if isinstance(self.credentials, ApplicationCredentialAuth) else "password"


    def _describe_login(self) -> str:
        """Who logs in, for messages (never the password or secret)."""
        from micado.config.credentials import OIDCAuth, PasswordAuth

        creds = self.credentials
        if isinstance(creds, PasswordAuth):
            return f"user '{creds.username}' in domain '{self.user_domain_name}', project '{self.project_id}'"
        if isinstance(creds, OIDCAuth):
            token = "a refreshed" if creds.refresh is not None else "the literal"
            return (f"OpenID Connect ({token} access token) through identity provider '{creds.identity_provider}', "
                    f"protocol '{self.OIDC_PROTOCOL}', project '{self.project_id}'")
        return f"application credential '{creds.application_credential_id}'"


    def _connect(self) -> tuple[Any, Any]:
        """Return ``(openstacksdk connection, novaclient client)``, logging in on first use."""
        if self._sdk is None:
            from keystoneauth1 import session as ks_session
            from keystoneauth1.identity import v3
            from novaclient import client as nova_client
            from openstack import connection

            from micado import __version__
            from micado.config.credentials import OIDCAuth, PasswordAuth

            creds = self.credentials
            if isinstance(creds, PasswordAuth):
                plugin: Any = v3.Password(
                    auth_url=self.auth_url, username=creds.username, password=creds.password,
                    user_domain_name=self.user_domain_name, project_id=self.project_id,
                )
            elif isinstance(creds, OIDCAuth):
                plugin = v3.OidcAccessToken(
                    auth_url=self.auth_url, identity_provider=creds.identity_provider,
                    protocol=self.OIDC_PROTOCOL, access_token=self._oidc_access_token(creds),
                    project_id=self.project_id,
                )
            else:
                plugin = v3.ApplicationCredential(
                    auth_url=self.auth_url,
                    application_credential_id=creds.application_credential_id,
                    application_credential_secret=creds.application_credential_secret,
                )
            session = ks_session.Session(
                auth=plugin, verify=self.verify, timeout=self.request_timeout,
                app_name="micado-client", app_version=__version__,
            )
            self._session = session
            self._nova = nova_client.Client("2.1", session=session, region_name=self.region)
            _disable_completion_cache(self._nova)
            self._sdk = connection.Connection(session=session, region_name=self.region)
        return self._sdk, self._nova


    def _oidc_access_token(self, creds: OIDCAuth) -> str:
        """The literal access token, or a fresh one from the provider (never stored)."""
        if creds.refresh is None:
            assert creds.access_token is not None
            return creds.access_token
        from micado.launcher.openstack.openid_token import fetch_access_token

        return fetch_access_token(creds, timeout=self.request_timeout, verify=self.verify)


    def _project(self) -> str:
        """The id of the project the token is scoped to (application credentials bring their own)."""
        self._connect()
        project_id: str = self._call("log in", self._session.get_project_id)
        return project_id


    def close(self) -> None:
        """Close the HTTP session; the next call logs in again."""
        if self._session is not None:
            self._session.session.close()
        self._session = self._sdk = self._nova = None


    @contextmanager
    def _cloud(self, doing: str) -> Iterator[None]:
        """Translate every SDK or Keystone exception raised inside into a LaunchError."""
        try:
            yield
        except MicadoException:
            raise
        except Exception as exc:
            # Not chained: the SDK's exception quotes the cloud's raw words, which our message masks.
            raise self._translate(exc, doing) from None


    def _call(self, doing: str, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self._cloud(doing):
            return function(*args, **kwargs)


    def _said(self, text: object) -> str:
        """The cloud's words (an SDK exception's text), fit to show: what we sent masked, controls visible."""
        from micado.config.credentials import ApplicationCredentialAuth, OIDCAuth, PasswordAuth

        creds = self.credentials
        secrets: list[str | None] = []
        if isinstance(creds, PasswordAuth):
            secrets.append(creds.password)
        elif isinstance(creds, ApplicationCredentialAuth):
            secrets.append(creds.application_credential_secret)
        elif isinstance(creds, OIDCAuth):
            secrets.append(creds.access_token)
            if creds.refresh is not None:
                secrets += [creds.refresh.refresh_token, creds.refresh.client_secret]
        plugin = getattr(self._session, "auth", None)
        secrets.append(getattr(plugin, "access_token", None))  # the OpenID Connect one, refreshed
        secrets.append(getattr(getattr(plugin, "auth_ref", None), "auth_token", None))  # Keystone's token
        return server_text(text, secrets=[s for s in secrets if isinstance(s, str)], limit=1000)


    def _translate(self, exc: Exception, doing: str) -> MicadoException:
        from keystoneauth1 import exceptions as ks_exc
        from novaclient import exceptions as nova_exc
        from openstack import exceptions as sdk_exc

        from micado.config.credentials import OIDCAuth

        where = f"the OpenStack cloud at {self.auth_url}"
        creds = self.credentials
        if isinstance(creds, OIDCAuth) and isinstance(exc, ks_exc.HttpError) and "/OS-FEDERATION/" in (exc.url or ""):
            return self._federation_refused(creds, exc)
        if isinstance(exc, (ks_exc.Unauthorized, nova_exc.Unauthorized)) or (
            isinstance(exc, sdk_exc.HttpException) and exc.status_code == 401
        ):
            return LaunchError(
                f"authentication failed at {self.auth_url} for {self._describe_login()}: "
                "the cloud refused the credentials (check the credentials file, project_id and user_domain_name)"
            )
        if isinstance(exc, ks_exc.SSLError):
            return LaunchError(f"TLS check failed while trying to {doing} at {where}: {self._said(exc)} "
                               "(give verify= a CA bundle, or verify=False)")
        if isinstance(exc, ks_exc.ConnectTimeout):  # keystoneauth's name for any requests timeout
            return LaunchError(f"{where} did not answer within {self.request_timeout:g} s while trying to {doing} "
                               "(request_timeout)")
        if isinstance(exc, ks_exc.ConnectFailure):
            reason = re.search(r"\[Errno -?\d+\][^'\"]*", str(exc))  # the socket's words, not urllib3's chain
            return LaunchError(f"cannot reach {where} while trying to {doing}: "
                               f"{reason.group(0).rstrip(')') if reason else type(exc).__name__}")
        if isinstance(exc, (ks_exc.EndpointNotFound, sdk_exc.EndpointNotFound, sdk_exc.ServiceDisabledException)):
            return LaunchError(f"cannot {doing}: {self._missing_endpoint()}")
        if isinstance(exc, ks_exc.RequestTimeout):
            return LaunchError(f"{where} did not answer within {self.request_timeout:g} s while trying to {doing}")
        if isinstance(exc, nova_exc.ClientException):
            verb = "failed" if isinstance(exc.code, int) and exc.code >= 500 else "refused"
            return LaunchError(f"Nova {verb} to {doing}: {self._said(exc.message)} (HTTP {exc.code})")
        if isinstance(exc, sdk_exc.HttpException):
            verb = "failed" if (exc.status_code or 0) >= 500 else "refused"
            return LaunchError(f"{where} {verb} to {doing}: {self._said(exc.details or exc.message)} "
                               f"(HTTP {exc.status_code})")
        if isinstance(exc, (ks_exc.ClientException, sdk_exc.SDKException)):
            return LaunchError(f"cannot {doing} on {where}: {self._said(exc)}")
        return LaunchError(f"unexpected {type(exc).__name__} while trying to {doing} on {where}: {self._said(exc)}")


    def _federation_refused(self, creds: OIDCAuth, exc: Any) -> MicadoException:
        """Keystone's refusal of the federated login: an unknown identity provider, or a refused token."""
        from micado.exceptions import CredentialsError

        status = getattr(exc, "http_status", None)
        key = f"{creds.key}.identity_provider"
        if status == 404:
            return CredentialsError(
                f"Keystone at {self.auth_url} has no identity provider '{creds.identity_provider}' with protocol "
                f"'{self.OIDC_PROTOCOL}' (HTTP 404 from its federation route); check {key} in {creds.path} "
                "(EGI clouds call theirs egi.eu)",
                path=creds.path, key=key,
            )
        if status == 401:
            source = ("the access token just refreshed" if creds.refresh is not None
                      else f"the access token in {creds.path} ({creds.key}.access_token; it may have expired)")
            return CredentialsError(
                f"Keystone at {self.auth_url} refused {source} through identity provider "
                f"'{creds.identity_provider}' (HTTP 401): the provider does not vouch for it, or its user "
                "is not mapped to a project of this cloud",
                path=creds.path, key=f"{creds.key}.access_token",
            )
        return LaunchError(f"Keystone at {self.auth_url} refused the federated login through "
                           f"'{creds.identity_provider}': {self._said(exc)} (HTTP {status})")


    def _missing_endpoint(self) -> str:
        """Explain a missing catalog endpoint, listing the regions the catalog has."""
        regions: set[str] = set()
        try:
            access = self._session.auth.get_access(self._session)
            for service in access.service_catalog.catalog:
                regions.update(e.get("region_id") or e.get("region") or "" for e in service.get("endpoints", []))
        except Exception as exc:  # only for a better message; the original error is raised anyway
            logger.debug("could not read the service catalog: %s", exc)
        listed = self._said(", ".join(sorted(r for r in regions if r))) or "(none)"
        return f"the service catalog has no public endpoint for it in region {self.region!r}; regions: {listed}"



def _disable_completion_cache(nova: Any) -> None:
    """Stop novaclient writing its shell-completion caches under ``~/.novaclient``.

    Every list and create would otherwise write files into the user's home; a
    library must not. The managers' cache hook becomes a no-op.
    """

    @contextmanager
    def no_cache(*args: Any, **kwargs: Any) -> Iterator[None]:
        yield

    for manager in (nova.flavors, nova.keypairs, nova.servers):
        manager.completion_cache = no_cache


def normalise_auth_url(auth_url: str) -> str:
    """Check the Keystone URL and make it end in ``/v3``.

    Raises:
        InvalidArgument: not an http(s) URL with a host, or a Keystone v2 URL.
    """
    from micado import checks

    checks.http_url("auth_url", auth_url, "Keystone, e.g. https://cloud.example:5000/v3")
    url = auth_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.path.endswith(("/v2.0", "/v2")):
        raise InvalidArgument(f"auth_url {auth_url!r} is a Keystone v2 URL; give the v3 one (ending in /v3)")
    return url if parts.path.endswith("/v3") else url + "/v3"
