"""A TOSCA Submitter emulator: the MiCADO master's REST API over HTTPS on loopback.

:class:`SubmitterEmulator` serves :class:`~micado.testing.submitter.wsgi.SubmitterApp`
(the v2.0 contract in the docs' "TOSCA Submitter API" page, basic auth, path prefix) with a threaded werkzeug
server and a self-signed certificate, so clients are tested over real TLS::

    with SubmitterEmulator(password="secret") as submitter:
        requests.get(submitter.endpoint + "v2.0/applications/",
                     auth=(submitter.user, submitter.password), verify=submitter.cert_path)

It also runs as a program, as the test playbook starts it on a "master"::

    MICADO_SUBMITTER_PASSWORD=secret python -m micado.testing.submitter \\
        --port 0 --user admin --tls-pem ssl.pem --ready-file ready.json

The ready file (JSON: endpoint, cert, user, password, pid; mode 0600) appears once
the server listens; SIGTERM or SIGINT stop it cleanly (exit status 0).

Like the MiCADO proxy, it also serves the master's dashboards on the same port
(``/dashboard``, ``/grafana``, ``/prometheus``, ``/kubernetes``: a small page each,
behind the same login); ``--dashboards grafana,prometheus`` (or the ``dashboards``
field) chooses which exist, the others answer 404, and ``--response-delay 2`` (or
``response_delay``) makes every answer wait, like a slow master.

Layout, as moto lays out its emulators and like :mod:`micado.testing.openstack`:
:mod:`.models` holds the state and the server's checks (it never imports HTTP
code), :mod:`.adt` reads ADTs as the server does, :mod:`.responses` turns
requests into model calls and answers, :mod:`.urls` lists the routes,
:mod:`.wsgi` is the application (the proxy's login in front), :mod:`.tls_server`
the HTTPS server and :mod:`.server` the emulator and its command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from micado.testing.submitter.adt import (
    MAX_ADT_BYTES,
    TOSCA_SECTIONS,
    VALID_TOSCA_VERSIONS,
    check_tosca,
    is_csar_name,
    load_adt_bytes,
    load_adt_url,
)
from micado.testing.submitter.models import (
    DASHBOARD_NAMES,
    DEFAULT_ADAPTORS,
    RequestLog,
    SubmitterError,
    SubmitterState,
    generate_app_id,
)

if TYPE_CHECKING:
    from micado.testing.submitter.server import ENV_PASSWORD, SubmitterEmulator, main
    from micado.testing.submitter.wsgi import SubmitterApp

__all__ = [
    "ENV_PASSWORD",
    "DEFAULT_ADAPTORS",
    "DASHBOARD_NAMES",
    "SubmitterEmulator",
    "main",
    "SubmitterApp",
    "SubmitterState",
    "SubmitterError",
    "RequestLog",
    "generate_app_id",
    "VALID_TOSCA_VERSIONS",
    "TOSCA_SECTIONS",
    "MAX_ADT_BYTES",
    "is_csar_name",
    "load_adt_bytes",
    "load_adt_url",
    "check_tosca",
]


def __getattr__(name: str) -> Any:
    """The server's and the application's names, imported when first asked for:
    importing the state (this package's models) must not load werkzeug."""
    if name in ("ENV_PASSWORD", "SubmitterEmulator", "main"):
        from micado.testing.submitter import server

        return getattr(server, name)
    if name == "SubmitterApp":
        from micado.testing.submitter import wsgi

        return wsgi.SubmitterApp
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names, the lazy ones included (for ``dir()`` and autodoc)."""
    return sorted({*globals(), *__all__})
