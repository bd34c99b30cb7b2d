"""Keystone's state: projects with one user and one application credential each, and the tokens issued.

A token is scoped to the project of the account that asked for it; the services
read that project from the token (:meth:`IdentityBackend.caller`) and show each
project only its own resources.

Federation (OS-FEDERATION, protocol ``openid``): an identity provider registered
with :meth:`IdentityBackend.add_identity_provider` vouches for access tokens (its
``verifier`` asks the OpenID Connect provider); every user it vouches for is mapped
into one project. The federated login issues an unscoped token, which the ``token``
method rescopes to that project, as keystoneauth's ``OidcAccessToken`` does.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from micado.testing.openstack.core import Caller, EmulatorError, Faults, now, unauthorized

__all__ = ["Account", "IdentityBackend", "IdentityProvider", "ClaimsVerifier", "caller_of"]

DOMAIN_NAME = "Default"
_DOMAIN = {"id": "default", "name": DOMAIN_NAME}
#: The domain of federated users, as Keystone names it.
_FEDERATED_DOMAIN = {"id": "Federated", "name": "Federated"}
#: The one federation protocol the emulator speaks.
OPENID = "openid"


class ClaimsVerifier(Protocol):
    """Validates an OpenID Connect access token with its provider (mod_auth_openidc's part)."""

    def claims(self, access_token: str) -> dict[str, Any]:
        """The provider's claims (``sub`` at least).

        Raises:
            EmulatorError: 401 when the provider refuses the token, 503 when it cannot be asked.
        """
        ...


@dataclass(frozen=True)
class IdentityProvider:
    """A federated identity provider and its mapping.

    Attributes:
        id: its id in Keystone (``egi.eu``), the ``identity_providers/<id>`` of the route.
        verifier: what validates its access tokens.
        project_id: the project every user it vouches for is mapped into.
    """

    id: str
    verifier: ClaimsVerifier
    project_id: str


@dataclass(frozen=True)
class Account:
    """A project with its one user (password login) and application credential.

    Attributes:
        project_id: the project's id.
        project_name: the project's name.
        user_id: the user's id.
        username: the user's name (domain ``Default``).
        password: the user's password.
        application_credential_id: the id of the user's application credential for the project.
        application_credential_secret: its secret.
        user_domain_name: always ``Default``.
    """

    project_id: str
    project_name: str
    user_id: str
    username: str
    password: str = field(repr=False)
    application_credential_id: str
    application_credential_secret: str = field(repr=False)
    user_domain_name: str = DOMAIN_NAME

    def login(self, auth_url: str, region: str) -> dict[str, str | None]:
        """How to log in as this account.

        Args:
            auth_url: the Keystone v3 URL.
            region: the cloud's region.

        Returns:
            ``auth_url``, ``region``, ``project_id``, ``user_domain_name``, ``username``,
            ``password``, ``application_credential_id`` and ``application_credential_secret``.
        """
        return {
            "auth_url": auth_url, "region": region, "project_id": self.project_id,
            "user_domain_name": self.user_domain_name, "username": self.username, "password": self.password,
            "application_credential_id": self.application_credential_id,
            "application_credential_secret": self.application_credential_secret,
        }


class IdentityBackend:
    """The accounts and the tokens of the emulated Keystone.

    Args:
        lock: the cloud's lock.
        faults: the cloud's fault switches (``auth_failure`` refuses every login).
    """

    def __init__(self, lock: threading.RLock, faults: Faults) -> None:
        self.lock = lock
        self.faults = faults
        self.accounts: list[Account] = []
        self.tokens: dict[str, dict[str, Any]] = {}
        self.identity_providers: dict[str, IdentityProvider] = {}
        self._federated_projects: dict[str, str] = {}  # federated user id -> the project it is mapped into

    def add_account(self, project_name: str, username: str, *, project_id: str | None = None) -> Account:
        """Create a project with one user and one application credential.

        Args:
            project_name: the new project's name.
            username: its user's name.
            project_id: the project's id; a new one by default.

        Returns:
            The new account, with its secrets.

        Raises:
            ValueError: the project id, project name or user name is taken.
        """
        account = Account(
            project_id=project_id or uuid.uuid4().hex, project_name=project_name, user_id=uuid.uuid4().hex,
            username=username, password=secrets.token_urlsafe(12),
            application_credential_id=uuid.uuid4().hex, application_credential_secret=secrets.token_urlsafe(16),
        )
        with self.lock:
            for other in self.accounts:
                if {other.project_id, other.project_name, other.username} & {
                        account.project_id, account.project_name, account.username}:
                    raise ValueError(f"project {project_name!r} or user {username!r} exists already")
            self.accounts.append(account)
        return account

    def issue_token(self, auth: Any, catalog: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
        """Log in: check the identity of a ``POST /v3/auth/tokens`` body and issue a token.

        Args:
            auth: the body's ``auth`` object (``identity`` and optional ``scope``).
            catalog: the service catalog a project-scoped token carries.

        Returns:
            The token id (the ``X-Subject-Token``) and the token body.

        Raises:
            EmulatorError: 400 for a malformed body, 401 for wrong credentials, a
                project that is not the user's, or :attr:`Faults.auth_failure`.
        """
        if self.faults.auth_failure:
            raise unauthorized()
        try:
            identity = auth["identity"]
            methods = identity["methods"]
        except (TypeError, KeyError):
            raise EmulatorError(400, "Expecting to find identity in auth.") from None
        if methods == ["token"]:
            return self._rescope(identity.get("token"), (auth.get("scope") or {}).get("project"), catalog)
        if methods == ["password"]:
            account = self._password_account(identity.get("password", {}).get("user", {}))
            scoped = self._in_scope(account, (auth.get("scope") or {}).get("project"))
            extra: dict[str, Any] = {}
        elif methods == ["application_credential"]:
            account = self._credential_account(identity.get("application_credential", {}))
            scoped = True
            extra = {"application_credential": {"id": account.application_credential_id, "name": "micado",
                                                "restricted": True}}
        else:
            raise unauthorized(f"Unsupported authentication methods: {methods}")
        token: dict[str, Any] = {
            "methods": methods, "audit_ids": [secrets.token_urlsafe(16)], "issued_at": now(),
            "expires_at": "2099-01-01T00:00:00.000000Z",
            "user": {"id": account.user_id, "name": account.username, "domain": _DOMAIN,
                     "password_expires_at": None},
            **extra,
        }
        if scoped:
            token.update(project={"id": account.project_id, "name": account.project_name, "domain": _DOMAIN},
                         is_domain=False, roles=[{"id": secrets.token_hex(16), "name": "member"}], catalog=catalog)
        token_id = secrets.token_hex(32)
        with self.lock:
            self.tokens[token_id] = token
        return token_id, token

    def add_identity_provider(self, idp_id: str, verifier: ClaimsVerifier, project_id: str) -> IdentityProvider:
        """Register a federated identity provider (protocol ``openid``) whose users map into ``project_id``.

        Args:
            idp_id: its id (the route's ``identity_providers/<id>``).
            verifier: what validates its access tokens.
            project_id: the project its users may scope to.

        Returns:
            The identity provider.
        """
        provider = IdentityProvider(idp_id, verifier, project_id)
        with self.lock:
            self.identity_providers[idp_id] = provider
        return provider

    def federated_login(self, idp_id: str, protocol: str, authorization: str | None) -> tuple[str, dict[str, Any]]:
        """Answer ``POST /v3/OS-FEDERATION/identity_providers/<idp>/protocols/<protocol>/auth``.

        Args:
            idp_id: the identity provider of the route.
            protocol: the protocol of the route (only ``openid`` is known).
            authorization: the ``Authorization`` header (``Bearer <access token>``).

        Returns:
            The id and body of an unscoped token of the federated user.

        Raises:
            EmulatorError: 404 for an unknown identity provider or protocol; 401 without
                a bearer token, when the provider refuses it, or :attr:`Faults.auth_failure`;
                503 when the provider cannot be asked.
        """
        with self.lock:
            provider = self.identity_providers.get(idp_id)
        if provider is None or protocol != OPENID:
            what = f"identity provider {idp_id}" if provider is None else f"protocol {protocol}"
            raise EmulatorError(404, f"Could not find {what}.", "NotFound")
        if self.faults.auth_failure or not (authorization or "").startswith("Bearer "):
            raise unauthorized()
        claims = provider.verifier.claims((authorization or "")[len("Bearer "):].strip())
        subject = str(claims["sub"])
        user_id = hashlib.sha256(f"{idp_id}\0{subject}".encode()).hexdigest()[:32]
        token: dict[str, Any] = {
            "methods": [OPENID], "audit_ids": [secrets.token_urlsafe(16)], "issued_at": now(),
            "expires_at": "2099-01-01T00:00:00.000000Z",
            "user": {"id": user_id, "name": subject, "domain": _FEDERATED_DOMAIN,
                     "OS-FEDERATION": {"identity_provider": {"id": idp_id}, "protocol": {"id": OPENID},
                                       "groups": [{"id": f"{idp_id}-members"}]}},
        }
        token_id = secrets.token_hex(32)
        with self.lock:
            self._federated_projects[user_id] = provider.project_id
            self.tokens[token_id] = token
        return token_id, token

    def _rescope(self, token: Any, project: Any, catalog: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
        """The ``token`` method: a new token for the user of a valid token, scoped to one of its projects."""
        with self.lock:
            body = self.tokens.get(token.get("id", "")) if isinstance(token, dict) else None
        if body is None:
            raise unauthorized()
        user_id = body["user"]["id"]
        with self.lock:
            allowed = {a.project_id: a.project_name for a in self.accounts if a.user_id == user_id}
            if user_id in self._federated_projects:
                mapped = self._federated_projects[user_id]
                allowed[mapped] = next((a.project_name for a in self.accounts if a.project_id == mapped), mapped)
        wanted = project.get("id", project.get("name")) if isinstance(project, dict) else None
        project_id = next((pid for pid, name in allowed.items() if wanted in (pid, name)), None)
        if project_id is None:
            raise unauthorized(f"You are not authorized for project {wanted}.")
        scoped = {key: value for key, value in body.items() if key not in ("audit_ids", "issued_at", "methods")}
        scoped.update(methods=["token", *body["methods"]], audit_ids=[secrets.token_urlsafe(16)], issued_at=now(),
                      project={"id": project_id, "name": allowed[project_id], "domain": _DOMAIN}, is_domain=False,
                      roles=[{"id": secrets.token_hex(16), "name": "member"}], catalog=catalog)
        token_id = secrets.token_hex(32)
        with self.lock:
            self.tokens[token_id] = scoped
        return token_id, scoped

    def _password_account(self, user: Any) -> Account:
        if not isinstance(user, dict):
            raise unauthorized()
        domain = user.get("domain") or {}
        in_domain = domain.get("name") == DOMAIN_NAME or domain.get("id") == "default"
        with self.lock:
            for account in self.accounts:
                named = (user.get("name") == account.username and in_domain) or user.get("id") == account.user_id
                if named and user.get("password") == account.password:
                    return account
        raise unauthorized()

    def _credential_account(self, credential: Any) -> Account:
        if isinstance(credential, dict):
            with self.lock:
                for account in self.accounts:
                    if (credential.get("id"), credential.get("secret")) == (
                            account.application_credential_id, account.application_credential_secret):
                        return account
        raise unauthorized()

    @staticmethod
    def _in_scope(account: Account, project: Any) -> bool:
        """Whether a password login asks for a project-scoped token (401 if not the user's project)."""
        if project is None:
            return False
        if not isinstance(project, dict) or project.get("id", project.get("name")) not in (
                account.project_id, account.project_name):
            raise unauthorized()
        return True

    def validate(self, auth_token: str | None, subject_token: str | None) -> dict[str, Any]:
        """Answer ``GET /v3/auth/tokens``: the subject token's body.

        Args:
            auth_token: the asker's ``X-Auth-Token``.
            subject_token: the ``X-Subject-Token`` to validate.

        Returns:
            The token body.

        Raises:
            EmulatorError: 401 when the asker's token is not valid, 404 when the subject is not.
        """
        with self.lock:
            if self.tokens.get(auth_token or "") is None:
                raise unauthorized()
            body = self.tokens.get(subject_token or "")
        if body is None:
            raise EmulatorError(404, f"Could not find token: {(subject_token or '')[:8]}...", "NotFound")
        return body

    def revoke(self, auth_token: str | None, subject_token: str | None) -> None:
        """Answer ``DELETE /v3/auth/tokens``: the subject token stops working at once.

        Args:
            auth_token: the asker's ``X-Auth-Token``.
            subject_token: the token to revoke.

        Raises:
            EmulatorError: as :meth:`validate`.
        """
        self.validate(auth_token, subject_token)
        with self.lock:
            self.tokens.pop(subject_token or "", None)

    def caller(self, token: str | None) -> Caller:
        """Validate a service request's token (see :class:`~micado.testing.openstack.core.TokenValidator`).

        Args:
            token: the ``X-Auth-Token`` header, if sent.

        Returns:
            The token's project and user.

        Raises:
            EmulatorError: 401 when the token is missing, unknown or revoked, or not
                scoped to a project (a service cannot tell whose resources to show).
        """
        with self.lock:
            body = self.tokens.get(token or "")
        return caller_of(body)


def caller_of(body: dict[str, Any] | None) -> Caller:
    """The :class:`Caller` of a Keystone token body (ours or a real Keystone's).

    Args:
        body: the ``token`` object of Keystone's answer; ``None`` when there is none.

    Returns:
        Its project and user.

    Raises:
        EmulatorError: 401 when there is no body or it has no project.
    """
    if body is None:
        raise unauthorized()
    try:
        return Caller(project_id=str(body["project"]["id"]), user_id=str(body["user"]["id"]))
    except (KeyError, TypeError):
        # keystonemiddleware's words: a service needs a project-scoped token
        raise unauthorized("Unable to determine service tenancy.") from None
