"""The emulator as a server: :class:`OpenStackEmulator` serves an :class:`~.state.OpenStackCloud` on loopback.

Also the command ``python -m micado.testing.openstack`` (:func:`main`).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import threading
from pathlib import Path
from typing import Any
from collections.abc import Callable


from micado.testing.openstack.compute import urls as compute_urls
from micado.testing.openstack.core import REGION, SERVICE_PATHS
from micado.testing.openstack.identity import urls as identity_urls
from micado.testing.openstack.image import urls as image_urls
from micado.testing.openstack.network import urls as network_urls
from micado.testing._serving import Background, serve_wsgi
from micado.testing.openstack.state import OpenStackCloud
from micado.testing.openstack.wsgi import App

__all__ = ["OpenStackEmulator", "main"]


def make_app(cloud: OpenStackCloud) -> App:
    """The WSGI application serving ``cloud``'s four services.

    Args:
        cloud: the state the application reads and changes.

    Returns:
        The application.
    """
    return App(cloud, [
        identity_urls.service(cloud.identity),
        compute_urls.service(cloud.compute),
        image_urls.service(cloud.images),
        network_urls.service(cloud.network),
    ])


class OpenStackEmulator(OpenStackCloud):
    """A stateful emulated OpenStack cloud listening on loopback (see :mod:`micado.testing.openstack`).

    Args:
        host: the loopback address to listen on.
        port: the port; ``0`` picks a free one.
        boot_delay: seconds a server stays in BUILD before it becomes ACTIVE.
        floating_ip_pool: the addresses the external network hands out
            (default ``127.100.0.1`` to ``127.100.0.8``).
        on_boot: called with the server (a dict with ``id``, ``name``, ``user_data``
            as text, ``key_name``...) when its boot finishes; if it raises, the server
            goes to ERROR with the exception text as its fault message.
        on_create: called with the new server (as ``on_boot``) once Nova has
            registered it, before the answer is sent; if it raises, the answer is a
            500 but the server exists (like :attr:`Faults.lose_create_answer`).
        on_address: called with ``(server_id, address)`` when a floating IP is
            associated with the server, and ``(server_id, None)`` when it is removed.
        on_delete: called with the server id when a server is deleted.
        keystone_url: an external Keystone (``http://host:port/v3``) that issues the
            tokens and validates each one on every request; ``None`` uses the emulator's own.
        project_id: the project the seeded resources belong to (behind an external
            Keystone: the id of its project that the users log in to); a new id by default.
        delete_delay: seconds a deleted server stays visible (task state ``deleting``) before it is gone.

    Attributes:
        faults: the fault switches (:class:`Faults`).
        requests: every request received, as ``(method, path)`` tuples.

    Raises:
        ValueError: ``host`` is not a loopback address.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        boot_delay: float = 0.2,
        floating_ip_pool: list[str] | None = None,
        on_boot: Callable[[dict[str, Any]], object] | None = None,
        on_create: Callable[[dict[str, Any]], object] | None = None,
        on_address: Callable[[str, str | None], object] | None = None,
        on_delete: Callable[[str], object] | None = None,
        keystone_url: str | None = None,
        project_id: str | None = None,
        delete_delay: float = 0.0,
    ) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the emulator listens on loopback only, not {host!r}")
        super().__init__(boot_delay=boot_delay, delete_delay=delete_delay, floating_ip_pool=floating_ip_pool,
                         on_boot=on_boot, on_create=on_create, on_address=on_address, on_delete=on_delete,
                         keystone_url=keystone_url, project_id=project_id)
        self.host = host
        self.port = port
        self._server: Background | None = None

    @property
    def url(self) -> str:
        """The base URL of the running emulator.

        Raises:
            RuntimeError: it is not running.
        """
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return f"http://{self.host}:{self.port}"

    @property
    def endpoints(self) -> dict[str, str]:
        """The public URL of each service, by catalog type (what a Keystone catalog lists)."""
        return {kind: self.url + path for kind, path in SERVICE_PATHS.items()}

    @property
    def login(self) -> dict[str, str | None]:
        """How to log in: auth_url, region, project_id, user_domain_name, username,
        password, application_credential_id and application_credential_secret.

        Behind an external Keystone only ``auth_url``, ``region`` and ``project_id``
        (the seeded project) are known; the other values are ``None`` (the accounts
        are that Keystone's).
        """
        if self.keystone_url is not None:
            return {
                "auth_url": self.keystone_url, "region": REGION, "project_id": self.project_id,
                "user_domain_name": None, "username": None, "password": None,
                "application_credential_id": None, "application_credential_secret": None,
            }
        return self.account.login(f"{self.url}/identity/v3", REGION)

    def start(self) -> OpenStackEmulator:
        """Start listening (in a background thread); return self."""
        self._server = serve_wsgi(self.host, self.port, make_app(self), "openstack-emulator")
        self.port = self._server.port
        return self

    def stop(self) -> None:
        """Stop listening and cancel pending boots and deletions."""
        self.scheduler.cancel_all()
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> OpenStackEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{self.host}:{self.port}" if self._server is not None else "stopped"
        return f"<OpenStackEmulator {where} servers={len(self.servers_by_id)}>"


def main(argv: list[str] | None = None) -> int:
    """Run the emulator until SIGTERM/SIGINT (``python -m micado.testing.openstack``).

    Args:
        argv: command-line arguments (``sys.argv[1:]`` when ``None``).

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(
        prog="python -m micado.testing.openstack",
        description="A loopback OpenStack emulator: Keystone v3, Nova 2.1, Glance v2 and Neutron v2.0.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file", type=Path, help="write the login JSON here once listening")
    parser.add_argument("--keystone-url", help="an external Keystone v3 URL that issues and validates the tokens")
    parser.add_argument("--project-id", help="the project the seeded resources belong to (with --keystone-url: "
                                             "the Keystone project its users log in to)")
    parser.add_argument("--boot-delay", type=float, default=0.2)
    parser.add_argument("--floating-ip", action="append", help="an address of the floating IP pool (repeat)")
    args = parser.parse_args(argv)
    emulator = OpenStackEmulator(
        args.host, args.port, boot_delay=args.boot_delay, floating_ip_pool=args.floating_ip,
        keystone_url=args.keystone_url, project_id=args.project_id,
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    emulator.start()
    try:
        if args.ready_file is not None:
            ready = {**emulator.login, **emulator.seeded, "pid": os.getpid(), "url": emulator.url,
                     "endpoints": emulator.endpoints}
            temporary = args.ready_file.with_name(args.ready_file.name + ".tmp")
            temporary.write_text(json.dumps(ready, indent=2))
            os.chmod(temporary, 0o600)  # it holds the emulated cloud's password
            temporary.replace(args.ready_file)
        while not stopped.wait(0.5):  # a timed wait keeps the main thread responsive to signals
            pass
    finally:
        emulator.stop()
    return 0
