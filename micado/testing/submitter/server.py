"""The emulator as a server: :class:`SubmitterEmulator` serves a :class:`~.models.SubmitterState` over HTTPS.

Also the command ``python -m micado.testing.submitter`` (:func:`main`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import ssl
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from micado.cli.argv import glue_values
from micado.config.crypto import new_password
from micado.testing._serving import Background
from micado.testing.submitter.models import DASHBOARD_NAMES, SubmitterState, check_dashboards
from micado.testing.submitter.tls_server import TLSServer
from micado.testing.submitter.wsgi import SubmitterApp
from micado.testing.tls import make_self_signed, split_pem, write_private_file

__all__ = ["ENV_PASSWORD", "SubmitterEmulator", "main"]

logger = logging.getLogger(__name__)

#: Environment variable the command line reads the password from (keeps it out of ``ps``).
ENV_PASSWORD = "MICADO_SUBMITTER_PASSWORD"


class SubmitterEmulator(SubmitterState):
    """The TOSCA Submitter REST API on an HTTPS loopback server, with inspectable state.

    The state and switches (``applications``, ``requests``, ``login_page``,
    ``html_auth_pages``, ``adaptors``, ``dashboards``, ``deploy_error``, ``update_error``,
    ``delete_error``, ``delay``, ``response_delay``, ``add_application()``, ``reset()``) are
    those of :class:`~.models.SubmitterState`.

    Attributes:
        app: the WSGI application it serves (:class:`~.wsgi.SubmitterApp` over this state).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        user: str = "admin",
        password: str | None = None,
        prefix: str = "/toscasubmitter",
        tls_pem: str | os.PathLike[str] | None = None,
        tls_key: str | os.PathLike[str] | None = None,
        cert_out: str | os.PathLike[str] | None = None,
        adaptors: Mapping[str, str] | None = None,
        dashboards: Iterable[str] | None = None,
    ) -> None:
        """Prepare an emulator; :meth:`start` makes it listen.

        Args:
            host: the address to listen on (a loopback address in tests).
            port: the port, 0 for a free one (read :attr:`port` after :meth:`start`).
            user: the basic-auth user.
            password: the basic-auth password; a random one if None.
            prefix: the path prefix of the MiCADO proxy, "" for none.
            tls_pem: an existing PEM file with the certificate and its key (like a
                master's ``ssl.pem``); if None, a self-signed one is made for ``host``.
            tls_key: the key of ``tls_pem`` when it is in a file of its own (a
                user-supplied certificate: ``ssl.pem`` and ``ssl.key``).
            cert_out: where to write the certificate (only the certificate) as PEM,
                creating its directory; if None it goes to a private temporary
                directory removed by :meth:`stop`.
            adaptors: adaptor name -> status reported for applications; defaults to
                :data:`~.models.DEFAULT_ADAPTORS`.
            dashboards: the dashboards the proxy serves (names of
                :data:`~.models.DASHBOARD_NAMES`); all of them if None.

        Raises:
            ValueError: a dashboard name is unknown.
        """
        super().__init__(
            user=user,
            password=password if password is not None else new_password(),
            prefix=prefix,
            adaptors=adaptors,
            dashboards=dashboards,
        )
        self.app = SubmitterApp(self)
        self.host = host
        self._requested_port = port
        self._tls_pem = Path(tls_pem) if tls_pem is not None else None
        self._tls_key = Path(tls_key) if tls_key is not None else None
        self._cert_out = Path(cert_out) if cert_out is not None else None
        self._cert_path: Path | None = None
        self._tmpdir: str | None = None
        self._server: TLSServer | None = None
        self._serving: Background | None = None

    def __repr__(self) -> str:
        state = f"listening on {self.endpoint}" if self._server else "stopped"
        return f"<SubmitterEmulator user={self.user!r} {state}>"

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Answer one WSGI request with :attr:`app` (to serve the emulator in-process)."""
        return self.app(environ, start_response)

    # -- lifecycle ----------------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        """Load (or make) the certificate and key; write the certificate where promised."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._tmpdir = tempfile.mkdtemp(prefix="micado-submitter-")  # mode 0700
        if self._tls_pem is not None:
            # Split and rejoin: the key may come before the certificate in the file.
            pem = self._tls_pem.read_bytes() + (self._tls_key.read_bytes() if self._tls_key is not None else b"")
            cert_pem, key_pem = split_pem(pem)
        else:
            hosts = [self.host] + (["localhost"] if self.host != "localhost" else [])
            cert_pem, key_pem = make_self_signed(hosts)
        # ssl loads keys from files only: a 0600 file in a 0700 dir, removed at once.
        combined = write_private_file(Path(self._tmpdir) / "server.pem", cert_pem + key_pem)
        try:
            context.load_cert_chain(combined)
        finally:
            combined.unlink()
        cert_path = self._cert_out or Path(self._tmpdir) / "cert.pem"
        cert_path.parent.mkdir(parents=True, exist_ok=True)
        cert_path.write_bytes(cert_pem)
        self._cert_path = cert_path
        return context

    def start(self) -> SubmitterEmulator:
        """Start listening and serving in a background thread.

        Returns:
            The emulator itself.

        Raises:
            RuntimeError: already started.
            OSError: the address cannot be bound, or the PEM files cannot be read or written.
            ValueError: ``tls_pem`` holds no certificate or no key.
        """
        if self._server is not None:
            raise RuntimeError(f"{self!r} is already started")
        try:
            context = self._ssl_context()
            self._server = TLSServer(self.host, self._requested_port, self.app, context)
        except BaseException:
            self._cleanup_files()
            raise
        self._serving = Background(self._server, f"submitter-emulator-{self.port}")
        logger.debug("submitter emulator listening on %s", self.endpoint)
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and remove the temporary files.

        Safe to call more than once. A certificate written to ``cert_out`` is kept.
        """
        server, self._server = self._server, None
        serving, self._serving = self._serving, None
        if serving is not None:
            serving.stop()
        if server is not None:
            server.drop_connections()
        self._cleanup_files()

    def _cleanup_files(self) -> None:
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
            if self._cert_out is None:
                self._cert_path = None

    def __enter__(self) -> SubmitterEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- where it listens ---------------------------------------------------------------

    def _running(self) -> TLSServer:
        if self._server is None:
            raise RuntimeError("the submitter emulator is not started: call start() first")
        return self._server

    @property
    def port(self) -> int:
        """The port it listens on.

        Raises:
            RuntimeError: not started.
        """
        return int(self._running().server_address[1])

    @property
    def endpoint(self) -> str:
        """The API endpoint, e.g. ``https://127.0.0.1:PORT/toscasubmitter/``.

        Raises:
            RuntimeError: not started.
        """
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}{self.prefix}/"

    @property
    def cert_path(self) -> Path:
        """A PEM file with the server certificate only (use it as ``verify=``).

        Raises:
            RuntimeError: not started (a ``cert_out`` file stays readable after stop).
        """
        if self._cert_path is None:
            raise RuntimeError("the submitter emulator is not started: call start() first")
        return self._cert_path


# -- command line ---------------------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m micado.testing.submitter",
        description="Serve a TOSCA Submitter emulator over HTTPS until SIGTERM or SIGINT.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port, 0 for a free one (default 0)")
    parser.add_argument("--user", default="admin", help="basic-auth user (default admin)")
    parser.add_argument(
        "--password",
        help=f"basic-auth password; better given in ${ENV_PASSWORD}; random if neither is set",
    )
    parser.add_argument("--prefix", default="/toscasubmitter", help="path prefix (default /toscasubmitter)")
    parser.add_argument("--tls-pem", type=Path, help="PEM with certificate and key; generated if absent")
    parser.add_argument("--tls-key", type=Path, help="the key of --tls-pem, when it is in a file of its own")
    parser.add_argument("--cert-out", type=Path, help="write the certificate (only) to this file")
    parser.add_argument(
        "--ready-file", type=Path, help="write {endpoint, cert, user, password, pid} here once listening"
    )
    parser.add_argument(
        "--adaptors", help='JSON mapping of adaptor name to status, e.g. \'{"KubernetesAdaptor": "Executed"}\''
    )
    parser.add_argument(
        "--dashboards",
        default=",".join(DASHBOARD_NAMES),
        help=f"comma-separated dashboards to serve, the others answer 404 (default {','.join(DASHBOARD_NAMES)}; "
        '"" for none)',
    )
    parser.add_argument(
        "--response-delay", type=float, default=0.0, metavar="SECONDS",
        help="seconds every request waits before its answer (default 0)",
    )
    parser.add_argument("--state-file", type=Path,
                        help="keep the applications in this JSON file across restarts (read at start)")
    parser.add_argument("--verbose", action="store_true", help="log every request to standard error")
    args = parser.parse_args(argv)
    try:
        args.dashboards = check_dashboards(name.strip() for name in args.dashboards.split(",") if name.strip())
    except ValueError as error:
        parser.error(f"--dashboards: {error}")
    if not 0 <= args.response_delay < 3600:
        parser.error(f"--response-delay must be 0 or more seconds (under an hour), not {args.response_delay:g}")
    if args.adaptors is not None:
        try:
            args.adaptors = json.loads(args.adaptors)
        except ValueError as error:
            parser.error(f"--adaptors is not JSON: {error}")
        if not isinstance(args.adaptors, dict) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in args.adaptors.items()
        ):
            parser.error(
                '--adaptors must be a JSON mapping of names to statuses, e.g. {"KubernetesAdaptor": "Executed"}'
            )
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until SIGTERM or SIGINT.

    Args:
        argv: the arguments (``sys.argv[1:]`` if None).

    Returns:
        The exit status: 0 after a clean stop.
    """
    args = _parse_args(glue_values(sys.argv[1:] if argv is None else argv, ("--password",)))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    password = args.password if args.password is not None else os.environ.get(ENV_PASSWORD)
    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    emulator = SubmitterEmulator(
        args.host,
        args.port,
        user=args.user,
        password=password,
        prefix=args.prefix,
        tls_pem=args.tls_pem,
        tls_key=args.tls_key,
        cert_out=args.cert_out,
        adaptors=args.adaptors,
        dashboards=args.dashboards,
    )
    emulator.response_delay = args.response_delay
    if args.state_file is not None:
        emulator.keep_in(args.state_file)
    with emulator:
        if args.ready_file is not None:
            ready = {
                "endpoint": emulator.endpoint,
                "cert": str(emulator.cert_path.resolve()),
                "user": emulator.user,
                "password": emulator.password,
                "pid": os.getpid(),
            }
            write_private_file(args.ready_file, json.dumps(ready).encode())
        print(f"submitter emulator listening on {emulator.endpoint}", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
    return 0

