"""The ``micado`` command: a thin shell over :class:`~micado.MicadoClient`.

Exit codes: 0 success, 2 usage errors (bad arguments, credentials), 3 errors answered by
the MiCADO API, 4 connection errors and timeouts, 1 any other failure (cloud, installer).
Errors print one line without a traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from micado import exceptions as errors
from micado.client import MicadoClient
from micado.master.spec import options as create_options

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_API, EXIT_CONNECTION = 0, 1, 2, 3, 4

def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``micado``."""
    parser = argparse.ArgumentParser(prog="micado", description="Create MiCADO masters and manage their applications.")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and library logs")
    groups = parser.add_subparsers(dest="group", required=True, metavar="{master,app}")

    master = groups.add_parser("master", help="create, attach, list and destroy MiCADO masters")
    master_commands = master.add_subparsers(dest="command", required=True)
    create = master_commands.add_parser("create", help="create a master on OpenStack (password: MICADO_PASSWORD)")
    create.add_argument("--launcher", default="openstack", help="cloud interface (default: openstack)")
    for option in create_options():  # declared once, in micado.master.spec.CreateSpec
        default = "" if option.default in (None, "") else f" (default: {option.default})"
        create.add_argument("--" + option.name.replace("_", "-"), dest=option.name, type=option.type,
                            help=option.help + default)
    create.add_argument("--set", action="append", default=[], dest="settings", metavar="KEY=VALUE",
                        help="a setting of the ansible-micado release, e.g. enable_occopus=true "
                             "(repeatable; values are typed like YAML: true, 600, text)")
    create.add_argument("--kwargs-file", help="JSON file of create() keyword arguments (flags override it)")
    for name in ("attach", "destroy"):
        command = master_commands.add_parser(name, help=f"{name} a stored master")
        command.add_argument("master_id")
    master_commands.add_parser("list", help="list the masters this client created")
    cleanup = master_commands.add_parser(
        "cleanup", help="remove what interrupted creates left: servers, addresses, records, working copies")
    cleanup.add_argument("--dry-run", action="store_true", help="only show what would be removed")
    from micado import _cli_host  # master info, master deploy

    _cli_host.add_commands(master_commands)

    app = groups.add_parser("app", help="manage the applications of a master")
    app.add_argument("--endpoint", help="TOSCA Submitter URL, e.g. https://IP/toscasubmitter/")
    app.add_argument("--api-version", default=None, help="API version (default v2.0)")
    app.add_argument("--user", help="MiCADO web user")
    app.add_argument("--password", help="MiCADO web password (better: MICADO_API_PASSWORD)")
    app.add_argument("--cert", help="the master's certificate, to verify TLS")
    app.add_argument("--insecure", action="store_true", help="do not verify the TLS certificate")
    app.add_argument("--master", help="a stored master id instead of --endpoint")
    app_commands = app.add_subparsers(dest="command", required=True)
    app_commands.add_parser("list", help="list applications")
    get = app_commands.add_parser("get", help="show an application's adaptors")
    get.add_argument("app_id")
    for name in ("create", "update"):
        command = app_commands.add_parser(name, help=f"{name} an application from an ADT")
        command.add_argument("app_id", nargs="?" if name == "create" else None)
        source = command.add_mutually_exclusive_group(required=True)
        source.add_argument("--file", help="ADT file (YAML or CSAR)")
        source.add_argument("--url", help="ADT URL, fetched by the server")
        command.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="TOSCA input")
        if name == "create":
            command.add_argument("--dry-run", action="store_true",
                                 help="validate and translate, deploy nothing (the id stays registered)")
    delete = app_commands.add_parser("delete", help="delete an application")
    delete.add_argument("app_id")
    delete.add_argument("--force", action="store_true", help="delete even if an adaptor fails")
    return parser


def parse_params(pairs: Sequence[str]) -> dict[str, Any] | None:
    """``["k=v", ...]`` to a mapping; values that parse as JSON (numbers, true, lists) are converted."""
    if not pairs:
        return None
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise errors.InvalidArgument(f"--param {pair!r} is not KEY=VALUE")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


def parse_settings(pairs: Sequence[str]) -> dict[str, Any]:
    """``["enable_occopus=true", ...]`` to a mapping, each value typed as a YAML scalar.

    The releases test their switches bare (``when: enable_occopus``), which ansible-core
    2.19 refuses for a string: ``true`` must arrive as a boolean, ``600`` as a number.
    """
    from micado.config._yaml import YamlSyntaxError, safe_load

    settings: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise errors.InvalidArgument(f"--set {pair!r} is not KEY=VALUE")
        try:
            settings[key.strip()] = safe_load(value) if value.strip() else ""
        except (YamlSyntaxError, RecursionError, ValueError) as exc:
            raise errors.InvalidArgument(f"--set {key}: the value is not YAML ({exc})") from None
    return settings


def read_kwargs_file(path: str, create: Callable[..., Any]) -> dict[str, Any]:
    """The keyword arguments for ``create`` in the JSON file of ``--kwargs-file``.

    Args:
        path: the file.
        create: the function they are for; its parameters are the valid keys
            (``progress`` excepted: the command passes its own).

    Returns:
        The arguments.

    Raises:
        InvalidArgument: the file cannot be read, is not JSON, does not hold a JSON
            object, or has a key ``create`` does not take (the valid keys are listed).
    """
    import inspect

    where = f"--kwargs-file {path}"
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise errors.InvalidArgument(f"{where} cannot be read: {exc.strerror or exc}") from None
    except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8, a number of 5000 digits, nesting
        raise errors.InvalidArgument(f"{where} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise errors.InvalidArgument(
            f"{where} must hold a JSON object of keyword arguments, not a {type(data).__name__}"
        )
    valid = set(inspect.signature(create).parameters) - {"progress"}
    unknown = sorted(set(data) - valid)
    if unknown:
        raise errors.InvalidArgument(
            f"{where} has unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(valid))}"
        )
    return data


def api_client(args: argparse.Namespace) -> MicadoClient:
    """The client for ``micado app``: a stored master, explicit flags, or MICADO_API_* variables."""
    if args.master:
        client = MicadoClient(launcher="openstack")
        client.master.attach(master_id=args.master)
        return client
    env = dict(os.environ)
    overrides = {
        "MICADO_API_ENDPOINT": args.endpoint,
        "MICADO_API_VERSION": args.api_version,
        "MICADO_API_USER": args.user,
        "MICADO_API_PASSWORD": args.password,
        "MICADO_API_CERT": args.cert,
    }
    env.update({key: value for key, value in overrides.items() if value is not None})
    if args.insecure:
        env.pop("MICADO_API_CERT", None)
        env["MICADO_API_VERIFY"] = "false"
    if not env.get("MICADO_API_ENDPOINT"):
        raise errors.InvalidArgument("give --endpoint (or MICADO_API_ENDPOINT) or --master")
    return MicadoClient.from_env(env)


class ProgressLine:
    """Progress of a long call: one live line on a terminal, plain lines otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.start = time.monotonic()
        self.live = stream.isatty()

    def __call__(self, stage: str, message: str) -> None:
        elapsed = time.monotonic() - self.start
        line = f"[{int(elapsed) // 60:02d}:{int(elapsed) % 60:02d}] {stage}: {message}"
        if self.live:
            width = 118
            self.stream.write("\r" + line[:width].ljust(width))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.live:
            self.stream.write("\n")
            self.stream.flush()


def master_command(args: argparse.Namespace, out: Callable[[Any, str], None]) -> None:
    client = MicadoClient(launcher=getattr(args, "launcher", "openstack"))
    from micado import _cli_host

    if _cli_host.run(args, client, out):
        return
    if args.command == "create":
        kwargs: dict[str, Any] = {}
        if args.kwargs_file:
            kwargs.update(read_kwargs_file(args.kwargs_file, client.master.create))
        kwargs.update({option.name: getattr(args, option.name) for option in create_options()
                       if getattr(args, option.name) is not None})
        if args.settings:
            kwargs["settings"] = {**(kwargs.get("settings") or {}), **parse_settings(args.settings)}
        if os.environ.get("MICADO_PASSWORD"):
            kwargs["micado_password"] = os.environ["MICADO_PASSWORD"]
        progress = ProgressLine(sys.stderr)
        try:
            master_id = client.master.create(progress=progress, **kwargs)
        finally:
            progress.done()
        out(client.master.info(), f"created master {master_id} at {client.master.endpoint}")
    elif args.command == "attach":
        client.master.attach(master_id=args.master_id)
        ids = [app.id for app in client.applications.list()]
        out({**client.master.info(), "applications": ids},
            f"master {args.master_id} at {client.master.endpoint}: applications {ids or 'none'}")
    elif args.command == "list":
        records = client.master.list()
        out(records, "\n".join(f"{r['id']}  {r['state']}  {r['ip'] or '-'}  {r['endpoint'] or '-'}  "
                               f"{r.get('created') or ''}" for r in records) or "no masters")
    elif args.command == "destroy":
        client.master.destroy(args.master_id, progress=ProgressLine(sys.stderr))
        out({"id": args.master_id, "destroyed": True}, f"destroyed master {args.master_id}")
    elif args.command == "cleanup":
        items = client.master.cleanup(dry_run=args.dry_run, progress=ProgressLine(sys.stderr))
        out([vars(item) for item in items], "\n".join(map(str, items)) or "nothing to clean up")
        if any(item.error for item in items):
            raise errors.MicadoException("some of what was found could not be removed (see above)")


def app_command(args: argparse.Namespace, out: Callable[[Any, str], None]) -> None:
    with api_client(args) as client:
        apps = client.applications
        if args.command == "list":
            ids = [app.id for app in apps.list()]
            out(ids, "\n".join(ids) or "no applications")
        elif args.command == "get":
            app = apps.get(args.app_id)
            out({"id": app.id, "adaptors": app.adaptors},
                "\n".join([app.id, *(f"  {name}: {state}" for name, state in app.adaptors.items())]))
        elif args.command in ("create", "update"):
            source = {"file": args.file} if args.file else {"url": args.url}
            params = parse_params(args.param)
            if args.command == "create":
                app = apps.create(app_id=args.app_id, params=params, dryrun=args.dry_run, **source)
                out({"id": app.id, "created": True, "dryrun": args.dry_run},
                    f"created{' (dry run)' if args.dry_run else ''} application {app.id}")
            else:
                app = apps.update(args.app_id, params=params, **source)
                out({"id": app.id, "updated": True}, f"updated application {app.id}")
        elif args.command == "delete":
            apps.delete(args.app_id, force=args.force)
            out({"id": args.app_id, "deleted": True}, f"deleted application {args.app_id}")


def exit_code(error: BaseException) -> int:
    """The exit code for an error (see the module docstring)."""
    if isinstance(error, (errors.InvalidArgument, errors.CredentialsError, errors.NotFound)) and not isinstance(
        error, errors.MicadoAPIError
    ):
        return EXIT_USAGE
    if isinstance(error, errors.MicadoAPIError):
        return EXIT_API
    if isinstance(error, (errors.MicadoConnectionError, errors.MicadoTimeout)):
        return EXIT_CONNECTION
    return EXIT_FAILURE


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the program is, so every undo runs as for Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(signum)


def _interrupted(interrupt: KeyboardInterrupt) -> int:
    """Say what an interrupt left, in one line or a few; return 128 + the signal number."""
    signum = getattr(interrupt, "signum", signal.SIGINT)
    notes = [note for note in getattr(interrupt, "__notes__", []) if note]
    left = any("not done" in note or "could not" in note or "stays" in note for note in notes)
    summary = "; ".join(notes[:3]) if notes else "nothing was left half made"
    advice = " Run 'micado master cleanup' to remove what is left." if left else ""
    print(f"micado: interrupted ({signal.Signals(signum).name}): {summary}.{advice}", file=sys.stderr)
    return 128 + int(signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``micado`` with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    SIGTERM and SIGHUP (``kill``, a cancelled CI job, a closed terminal) are handled
    like Ctrl-C: what was being made is undone, and the exit code is 128 + the signal.
    """
    args = build_parser().parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_terminated)
    if args.debug:
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")

    def out(data: Any, text: str) -> None:
        print(json.dumps(data, indent=2, default=str) if args.json else text)

    try:
        (master_command if args.group == "master" else app_command)(args, out)
    except errors.MicadoException as error:
        if args.debug:
            raise
        print(f"micado: error: {type(error).__name__}: {error}", file=sys.stderr)
        return exit_code(error)
    except KeyboardInterrupt as interrupt:
        return _interrupted(interrupt)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
