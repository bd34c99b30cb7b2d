"""The ``micado`` command: a thin shell over :class:`~micado.MicadoClient`.

Exit codes: 0 success, 2 usage errors (bad arguments, credentials), 3 errors answered by
the MiCADO API, 4 connection errors and timeouts, 1 any other failure (cloud, installer).
Errors print one line (JSON with ``--json``); ``--debug`` adds the traceback and changes
nothing else.
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
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from micado import exceptions as errors
from micado._argv import glue_values
from micado._cli_errors import EXIT_OK, EXIT_USAGE, exit_code, report, show_warnings_as_lines
from micado._version import __version__
from micado.client import MicadoClient
from micado.master.spec import options as create_options

if TYPE_CHECKING:
    from micado.models.application import Applications

__all__ = ["main", "build_parser", "exit_code"]

#: The environment variable naming the master of ``micado app`` when ``--master`` is not given.
ENV_MASTER = "MICADO_MASTER"
#: What shell completion offers for options that take a file: shtab.FILE for our two
#: shells, written out so that every run does not import shtab.
FILE = {"bash": "_shtab_compgen_files", "zsh": "_files"}


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are raised, so that ``main`` reports them like any other."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(self, message)


class UsageError(errors.InvalidArgument):
    """Bad command-line arguments, as argparse words them; the parser prints its usage with it."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser


def _add_cloud_option(command: argparse.ArgumentParser) -> None:
    command.add_argument("--cloud", metavar="NAME",
                         help="log in to OpenStack as the cloud NAME of your clouds.yaml (openstacksdk's own "
                              "config, e.g. --cloud \"$OS_CLOUD\") instead of the MiCADO credentials file")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``micado``."""
    parser = Parser(prog="micado", description="Create MiCADO masters and manage their applications.")
    parser.add_argument("--version", action="version", version=f"micado {__version__} (micado-client)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON (errors too, on stderr)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and library logs")
    groups = parser.add_subparsers(dest="group", required=True, metavar="{init,master,app,completion}")

    init = groups.add_parser("init", help="write a credentials file template to fill in")
    init.add_argument("--print", action="store_true", dest="print_only",
                      help="print the template instead of writing the file")

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
    create.add_argument("--kwargs-file", help="JSON file of create() keyword arguments (flags override it)"
                        ).complete = FILE  # type: ignore[attr-defined]
    for name in ("attach", "destroy"):
        command = master_commands.add_parser(name, help=f"{name} a stored master")
        command.add_argument("master_id", help="a stored master's id, or a prefix of it that only it has")
        _add_cloud_option(command)
    _add_cloud_option(create)
    master_commands.choices["destroy"].add_argument(
        "--yes", "-y", action="store_true", help="do not ask for confirmation (it is asked only on a terminal)")
    master_commands.add_parser("list", help="list the masters this client created")
    cleanup = master_commands.add_parser(
        "cleanup", help="remove what interrupted creates left: servers, addresses, records, working copies")
    cleanup.add_argument("--dry-run", action="store_true", help="only show what would be removed")
    cleanup.add_argument("--include-unowned", action="store_true",
                         help="also remove servers and addresses not made by this MiCADO dir (another dir's, "
                              "or marked without a store identity) launched at least --min-age ago")
    cleanup.add_argument("--min-age", metavar="DURATION",
                         help="with --include-unowned: how long ago the launch must be, e.g. 30m, 2h, 1d or "
                              "seconds (default: 2h)")
    cleanup.add_argument("--yes", "-y", action="store_true",
                         help="do not ask before --include-unowned removes (needed when not on a terminal)")
    _add_cloud_option(cleanup)
    from micado import _cli_host  # master info, master deploy

    _cli_host.add_commands(master_commands)
    _add_cloud_option(master_commands.choices["deploy"])

    app = groups.add_parser("app", help="manage the applications of a master")
    app.add_argument("--endpoint", help="TOSCA Submitter URL, e.g. https://IP/toscasubmitter/")
    app.add_argument("--api-version", default=None, help="API version (default v2.0)")
    app.add_argument("--user", help="MiCADO web user")
    app.add_argument("--password", help="MiCADO web password (better: MICADO_API_PASSWORD)")
    app.add_argument("--cert", help="the master's certificate, to verify TLS").complete = FILE  # type: ignore[attr-defined]
    app.add_argument("--insecure", action="store_true", help="do not verify the TLS certificate")
    app.add_argument("--master", help=f"a stored master id or unique prefix instead of --endpoint (default: "
                                      f"${ENV_MASTER}, or the only stored master)")
    app_commands = app.add_subparsers(dest="command", required=True)
    app_commands.add_parser("list", help="list applications")
    get = app_commands.add_parser("get", help="show an application's adaptors")
    get.add_argument("app_id")
    for name in ("create", "update"):
        command = app_commands.add_parser(name, help=f"{name} an application from an ADT")
        command.add_argument("app_id", nargs="?" if name == "create" else None)
        source = command.add_mutually_exclusive_group(required=True)
        source.add_argument("--file", help="ADT file (YAML, checked before the upload, or CSAR)"
                            ).complete = FILE  # type: ignore[attr-defined]
        source.add_argument("--url", help="ADT URL, fetched by the server")
        command.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="TOSCA input")
        if name == "create":
            command.add_argument("--dry-run", action="store_true",
                                 help="validate and translate, deploy nothing (the id stays registered)")
    delete = app_commands.add_parser("delete", help="delete an application")
    delete.add_argument("app_id")
    delete.add_argument("--force", action="store_true", help="delete even if an adaptor fails")

    completion = groups.add_parser("completion", help="print the shell completion script (bash or zsh)")
    completion.add_argument("shell", choices=("bash", "zsh"))
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


def resolve_master_id(client: MicadoClient, given: str) -> str:
    """The stored master id that ``given`` is, or is the unique beginning of.

    Args:
        client: a client with a launcher (its store is read).
        given: an id or a beginning of one.

    Returns:
        The full id.

    Raises:
        InvalidArgument: ``given`` is empty or blank, or several stored ids begin with
            it (they are listed).
        MasterNotFound: no stored id is or begins with ``given`` (the stored ones are listed).
    """
    return client.master.store.resolve(given)


def api_client(args: argparse.Namespace) -> tuple[MicadoClient, str]:
    """The client for ``micado app``, and the command that reaches the same master.

    The master is, in this order: ``--master``, ``--endpoint``, ``$MICADO_MASTER``,
    ``$MICADO_API_ENDPOINT`` (with the other ``MICADO_API_*`` variables), or the only
    stored master.

    Raises:
        InvalidArgument: none of these names a master (the stored ones are listed).
    """
    master = args.master if args.master is not None else None if args.endpoint else os.environ.get(ENV_MASTER)
    if master is not None and not master.strip():  # set but empty: never "the only master"
        raise errors.InvalidArgument("--master is empty: give a stored master's id" if args.master is not None
                                     else f"${ENV_MASTER} is empty: set it to a stored master's id, or unset it")
    endpoint = args.endpoint or os.environ.get("MICADO_API_ENDPOINT")
    if not master and not endpoint:
        stored = [record["id"] for record in MicadoClient(launcher="openstack").master.list()]
        if len(stored) != 1:
            known = f"stored masters: {', '.join(stored)}" if stored else "no master is stored"
            raise errors.InvalidArgument(
                f"which master? give --master ID (or set {ENV_MASTER}) or --endpoint URL "
                f"(or set MICADO_API_ENDPOINT); {known}")
        master = stored[0]
    if master:
        client = MicadoClient(launcher="openstack")
        master = resolve_master_id(client, master)
        client.master.attach(master_id=master)
        return client, f"micado app --master {master}"
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
    return MicadoClient.from_env(env), f"micado app --endpoint {env['MICADO_API_ENDPOINT']}"


def confirm(question: str, *, assume_yes: bool) -> None:
    """Ask ``question`` on the terminal; anything but y/yes cancels.

    Nothing is asked with ``assume_yes`` or when standard input is not a terminal
    (scripts, CI): the answer is then yes.

    Raises:
        MicadoException: the user did not answer yes.
    """
    if assume_yes or not sys.stdin.isatty():
        return
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise errors.MicadoException("cancelled: nothing was changed")


def cleanup_options(args: argparse.Namespace) -> dict[str, Any]:
    """``include_unowned`` and ``min_age`` for ``master cleanup``, confirmed before anything is looked at.

    ``--include-unowned`` removes what other MiCADO dirs made: asked on a terminal unless
    ``--yes``; refused without a terminal and without ``--yes``.

    Raises:
        InvalidArgument: a bad ``--min-age``, ``--min-age`` without ``--include-unowned``, or
            ``--include-unowned`` without a terminal and without ``--yes``.
        MicadoException: the user did not answer yes.
    """
    from micado import checks

    if not args.include_unowned:
        if args.min_age is not None:
            raise errors.InvalidArgument("--min-age applies only with --include-unowned")
        return {}
    min_age = checks.duration("--min-age", args.min_age if args.min_age is not None else "2h")
    if not args.dry_run and not args.yes:
        if not sys.stdin.isatty():
            raise errors.InvalidArgument("--include-unowned removes servers and addresses that other MiCADO "
                                         "dirs (or older micado-client versions) made: confirm with --yes "
                                         "when not on a terminal (try --dry-run first)")
        confirm(f"Also remove servers and addresses NOT made by this MiCADO dir (another user's or machine's, "
                f"or an older micado-client's) launched more than {args.min_age or '2h'} ago?", assume_yes=False)
    return {"include_unowned": True, "min_age": min_age}


def table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> str:
    """``rows`` under ``headers`` in columns as wide as their widest cell."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in (headers, *rows))


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
    client = MicadoClient(launcher=getattr(args, "launcher", "openstack"), cloud=getattr(args, "cloud", None))
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
        master_id = resolve_master_id(client, args.master_id)
        client.master.attach(master_id=master_id)
        ids = [app.id for app in client.applications.list()]
        out({**client.master.info(), "applications": ids},
            f"master {master_id} at {client.master.endpoint}: applications {ids or 'none'}")
    elif args.command == "list":
        records = client.master.list()
        rows = [(r["id"], r["state"], r["ip"] or "-", r["endpoint"] or "-", r.get("created") or "-") for r in records]
        out(records, table(rows, ("ID", "STATE", "IP", "ENDPOINT", "CREATED")) if rows else "no masters")
    elif args.command == "destroy":
        master_id = resolve_master_id(client, args.master_id)
        record = next((r for r in client.master.list() if r["id"] == master_id), None)
        if record is not None:  # an unknown id goes on to the library's error, which lists the known ones
            confirm(f"Destroy master {master_id} ({record['ip'] or 'no address'}), its VM and its applications?",
                    assume_yes=args.yes)
        client.master.destroy(master_id, progress=ProgressLine(sys.stderr))
        out({"id": master_id, "destroyed": True}, f"destroyed master {master_id}")
    elif args.command == "cleanup":
        items = client.master.cleanup(dry_run=args.dry_run, progress=ProgressLine(sys.stderr),
                                      **cleanup_options(args))
        out([vars(item) for item in items], "\n".join(map(str, items)) or "nothing to clean up")
        if any(item.error for item in items):
            raise errors.MicadoException("some of what was found could not be removed (see above)")


def app_command(args: argparse.Namespace, out: Callable[[Any, str], None]) -> None:
    client, command = api_client(args)
    with client:
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
                try:
                    app = apps.create(app_id=args.app_id, params=params, dryrun=args.dry_run, **source)
                except errors.BadRequest as error:
                    explained = _second_application(error, apps, command)
                    if explained is error:
                        raise
                    raise explained from error
                out({"id": app.id, "created": True, "dryrun": args.dry_run},
                    f"created{' (dry run)' if args.dry_run else ''} application {app.id}")
            else:
                app = apps.update(args.app_id, params=params, **source)
                out({"id": app.id, "updated": True}, f"updated application {app.id}")
        elif args.command == "delete":
            apps.delete(args.app_id, force=args.force)
            out({"id": args.app_id, "deleted": True}, f"deleted application {args.app_id}")


def _second_application(error: errors.BadRequest, apps: Applications, command: str) -> errors.BadRequest:
    """When the server refused a second application: ``error`` naming the running one and
    the command that removes it. ``error`` itself otherwise, or when the list fails.

    Args:
        error: the server's refusal.
        apps: the master's :class:`~micado.models.application.Applications`.
        command: the ``micado app ...`` words that reach the same master.
    """
    if "Multiple applications are not supported" not in error.explanation:
        return error
    try:
        running = [app.id for app in apps.list()]
    except errors.MicadoException:
        return error
    if not running:
        return error
    return errors.BadRequest(
        f"the master already runs application {', '.join(running)} (MiCADO runs one per master); "
        f"remove it first with: {command} delete {running[0]}",
        status_code=error.status_code, method=error.method, url=error.url,
    )


def init_command(args: argparse.Namespace, out: Callable[[Any, str], None]) -> None:
    """``micado init``: write (or print) the template of the cloud credentials file."""
    from micado.config.credentials import credentials_file_template, write_credentials_template

    if args.print_only:
        print(credentials_file_template(), end="")
        return
    path = write_credentials_template()
    out({"path": str(path), "written": True},
        f"wrote {path} (mode 0600): fill in your cloud's entry, then run `micado master create`")


def completion_command(args: argparse.Namespace, out: Callable[[Any, str], None]) -> None:
    """``micado completion SHELL``: the completion script, generated from the parser by shtab."""
    import shtab

    print(shtab.complete(build_parser(), shell=args.shell), end="")


COMMANDS: dict[str, Callable[[argparse.Namespace, Callable[[Any, str], None]], None]] = {
    "init": init_command,
    "master": master_command,
    "app": app_command,
    "completion": completion_command,
}


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
    argv = sys.argv[1:] if argv is None else list(argv)
    show_warnings_as_lines()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_terminated)
    try:
        args = build_parser().parse_args(glue_values(argv, ("--password",)))
    except UsageError as error:
        if "--json" in argv:  # the global flags come first; the parse stopped before it could say
            return report(error, as_json=True, debug=False)
        error.parser.print_usage(sys.stderr)
        sys.stderr.write(f"{error.parser.prog}: error: {error}\n")
        return EXIT_USAGE
    if args.debug:
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")

    def out(data: Any, text: str) -> None:
        print(json.dumps(data, indent=2, default=str) if args.json else text)

    try:
        COMMANDS[args.group](args, out)
    except errors.MicadoException as error:
        return report(error, as_json=args.json, debug=args.debug)
    except KeyboardInterrupt as interrupt:
        return _interrupted(interrupt)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
