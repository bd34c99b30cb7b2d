"""Keystone's routes, under ``/identity`` (all public: Keystone checks credentials itself)."""

from __future__ import annotations

from micado.testing.openstack.identity.models import IdentityBackend
from micado.testing.openstack.identity.responses import IdentityResponses, error
from micado.testing.openstack.wsgi import Route, Service

__all__ = ["service"]


def service(backend: IdentityBackend) -> Service:
    """Keystone's routes.

    Args:
        backend: the accounts and tokens.

    Returns:
        The service to serve.
    """
    r = IdentityResponses(backend)
    tokens = r"/identity/v3/auth/tokens"
    federated = r"/identity/v3/OS-FEDERATION/identity_providers/(?P<idp>[^/]+)/protocols/(?P<protocol>[^/]+)/auth"
    return Service("/identity", [
        Route("GET", r"/identity", r.versions, public=True),
        Route("GET", r"/identity/v3", r.version, public=True),
        Route("POST", tokens, r.issue_token, public=True),
        Route("GET", tokens, r.validate_token, public=True),
        Route("HEAD", tokens, r.validate_token, public=True),
        Route("DELETE", tokens, r.revoke_token, public=True),
        Route("POST", federated, r.federated_login, public=True),
        Route("GET", federated, r.federated_login, public=True),
    ], error)
