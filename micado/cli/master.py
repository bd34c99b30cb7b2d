"""The ``micado master`` commands: create, deploy, attach, info, list, destroy and cleanup."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from micado import exceptions as errors
from micado.cli.output import Out, ProgressLine, confirm, table
from micado.client import MicadoClient
from micado.launcher.registry import DEFAULT_LAUNCHER
from micado.master.spec import ANY, arguments
from micado.master.spec import options as create_options

__all__ = ["master_command", "parse_settings", "read_kwargs_file", "resolve_master_id", "cleanup_options"]


def parse_settings(pairs: Sequence[str]) -> dict[str, Any]:
    """``["enable_occopus=true", ...]`` to a mapping, each value typed as a YAML scalar.

    The releases test their switches bare (``when: enable_occopus``), which ansible-core
    2.19 refuses for a string: ``true`` must arrive as a boolean, ``600`` as a number.
    """
    from micado.config.bounded_yaml import YamlSyntaxError, safe_load

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


def read_kwargs_file(path: str, valid: Iterable[str]) -> dict[str, Any]:
    """The keyword arguments of ``create()`` in the JSON file of ``--kwargs-file``.

    Args:
        path: the file.
        valid: the keys it may have (:func:`create_argument_names`).

    Returns:
        The arguments.

    Raises:
        InvalidArgument: the file cannot be read, is not JSON, does not hold a JSON
            object, or has a key ``create()`` does not take (the valid keys are listed).
    """
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
    valid = set(valid)
    unknown = sorted(set(data) - valid)
    if unknown:
        raise errors.InvalidArgument(
            f"{where} has unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(valid))}"
        )
    return data


def create_argument_names() -> set[str]:
    """Every keyword ``create()`` takes: the spec's arguments and those of each registered launcher."""
    from micado.launcher.registry import launcher_classes

    return {name for name, _ in arguments()} | {option.name for cls in launcher_classes() for option in cls.options}


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


def master_command(args: argparse.Namespace, out: Out) -> None:
    """Run ``micado master COMMAND``, printing the result with ``out``.

    Raises:
        MicadoException: as the :class:`~micado.master.facade.MicadoMaster` method it calls.
    """
    client = MicadoClient(launcher=getattr(args, "launcher", DEFAULT_LAUNCHER), cloud=getattr(args, "cloud", None))
    _COMMANDS[args.command](args, client, out)


def _with_password(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with the MiCADO web password of ``$MICADO_PASSWORD``, when it is set and not empty."""
    if os.environ.get("MICADO_PASSWORD"):
        kwargs["micado_password"] = os.environ["MICADO_PASSWORD"]
    return kwargs


def _create(args: argparse.Namespace, client: MicadoClient, out: Out) -> None:
    kwargs: dict[str, Any] = {}
    if args.kwargs_file:
        kwargs.update(read_kwargs_file(args.kwargs_file, create_argument_names()))
    kwargs.update({option.name: getattr(args, option.name) for option in create_options()
                   if getattr(args, option.name) is not None})
    if args.settings:
        kwargs["settings"] = {**(kwargs.get("settings") or {}), **parse_settings(args.settings)}
    progress = ProgressLine(sys.stderr)
    try:
        master_id = client.master.create(progress=progress, **_with_password(kwargs))
    finally:
        progress.done()
    out(client.master.info(), f"created master {master_id} at {client.master.endpoint}")


def _deploy(args: argparse.Namespace, client: MicadoClient, out: Out) -> None:
    kwargs: dict[str, Any] = {option.name: getattr(args, option.name) for option in create_options(ANY)
                              if getattr(args, option.name) is not None}
    if args.settings:
        kwargs["settings"] = parse_settings(args.settings)
    progress = ProgressLine(sys.stderr)
    try:
        master_id = client.master.deploy(host=args.host, ssh_key=args.ssh_key, progress=progress,
                                         **_with_password(kwargs))
    finally:
        progress.done()
    out(client.master.info(), f"deployed master {master_id} at {client.master.endpoint}")


def _attach(args: argparse.Namespace, client: MicadoClient, out: Out) -> None:
    master_id = resolve_master_id(client, args.master_id)
    client.master.attach(master_id=master_id)
    ids = [app.id for app in client.applications.list()]
    out({**client.master.info(), "applications": ids},
        f"master {master_id} at {client.master.endpoint}: applications {ids or 'none'}")


def _info(args: argparse.Namespace, client: MicadoClient, out: Out) -> None:
    client.master.attach(master_id=resolve_master_id(client, args.master_id))
    data = client.master.info()
    if args.show_password:
        login = client.master.credentials()
        data = {**data, "micado_password": login.password, "grafana_password": login.grafana_password}
    out(data, "\n".join(f"{key}: {'-' if value is None else value}" for key, value in data.items()))


def _list(args: argparse.Namespace, client: MicadoClient, out: Out) -> None:
    records = client.master.list()
    rows = [(r["id"], r["state"], r["ip"] or "-", r["endpoint"] or "-", r.get("created") or "-") for r in records]
    out(records, table(rows, ("ID", "STATE", "IP", "ENDPOINT", "CREATED")) if rows else "no masters")


def _destroy(args: argparse.Namespace, client: MicadoClient, out: Out) -> None:
    master_id = resolve_master_id(client, args.master_id)
    record = next((r for r in client.master.list() if r["id"] == master_id), None)
    if record is not None:  # an unknown id goes on to the library's error, which lists the known ones
        confirm(f"Destroy master {master_id} ({record['ip'] or 'no address'}), its VM and its applications?",
                assume_yes=args.yes)
    client.master.destroy(master_id, progress=ProgressLine(sys.stderr))
    out({"id": master_id, "destroyed": True}, f"destroyed master {master_id}")


def _cleanup(args: argparse.Namespace, client: MicadoClient, out: Out) -> None:
    items = client.master.cleanup(dry_run=args.dry_run, progress=ProgressLine(sys.stderr), **cleanup_options(args))
    out([vars(item) for item in items], "\n".join(map(str, items)) or "nothing to clean up")
    if any(item.error for item in items):
        raise errors.MicadoException("some of what was found could not be removed (see above)")


_COMMANDS: dict[str, Callable[[argparse.Namespace, MicadoClient, Out], None]] = {
    "create": _create,
    "deploy": _deploy,
    "attach": _attach,
    "info": _info,
    "list": _list,
    "destroy": _destroy,
    "cleanup": _cleanup,
}
