"""The entry point of ``micado``: parse the words, run the command, turn errors and signals into exit codes."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable, Sequence

from micado import exceptions as errors
from micado.cli.app import app_command
from micado.cli.argv import glue_values, split_remote_command
from micado.cli.errors import EXIT_OK, EXIT_USAGE, report, show_warnings_as_lines
from micado.cli.master import master_command
from micado.cli.output import Out, printer
from micado.cli.parser import UsageError, build_parser

__all__ = ["main", "Terminated", "COMMANDS"]


def init_command(args: argparse.Namespace, out: Out) -> None:
    """``micado init``: write (or print) the template of the cloud credentials file."""
    from micado.config.credentials import credentials_file_template, write_credentials_template

    if args.print_only:
        print(credentials_file_template(), end="")
        return
    path = write_credentials_template()
    out({"path": str(path), "written": True},
        f"wrote {path} (mode 0600): fill in your cloud's entry, then run `micado master create`")


def completion_command(args: argparse.Namespace, out: Out) -> None:
    """``micado completion SHELL``: the completion script, generated from the parser by shtab."""
    import shtab

    print(shtab.complete(build_parser(), shell=args.shell), end="")


#: The command of each group (``micado GROUP ...``).
COMMANDS: dict[str, Callable[[argparse.Namespace, Out], int | None]] = {
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
    argv, remote_command = split_remote_command(argv)
    try:
        args = build_parser().parse_args(glue_values(argv, ("--password",)))
        if remote_command is not None and (args.group, getattr(args, "command", None)) != ("master", "ssh"):
            raise UsageError(build_parser(), "'-- COMMAND...' is only for 'micado master ssh'")
    except UsageError as error:
        if "--json" in argv:  # the global flags come first; the parse stopped before it could say
            return report(error, as_json=True, debug=False)
        error.parser.print_usage(sys.stderr)
        sys.stderr.write(f"{error.parser.prog}: error: {error}\n")
        return EXIT_USAGE
    if args.debug:
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
    args.remote_command = remote_command
    try:
        code = COMMANDS[args.group](args, printer(as_json=args.json))
    except errors.MicadoException as error:
        return report(error, as_json=args.json, debug=args.debug)
    except KeyboardInterrupt as interrupt:
        return _interrupted(interrupt)
    return EXIT_OK if code is None else code
