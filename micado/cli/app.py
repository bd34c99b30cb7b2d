"""The ``micado app`` commands: list, get, create, update and delete a master's applications."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from micado import exceptions as errors
from micado.cli.output import Out
from micado.cli.parser import ENV_MASTER
from micado.client import MicadoClient
from micado.launcher.registry import DEFAULT_LAUNCHER

if TYPE_CHECKING:
    from micado.models.application import Applications

__all__ = ["app_command", "api_client", "parse_params"]


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
        master = _the_only_stored_master()
    if master:
        client = MicadoClient(launcher=DEFAULT_LAUNCHER)  # attach reads the record, made by whichever launcher
        master = client.master.store.resolve(master)
        client.master.attach(master_id=master)
        return client, f"micado app --master {master}"
    return _endpoint_client(args)


def _the_only_stored_master() -> str:
    """The id of the one stored master.

    Raises:
        InvalidArgument: none or several are stored (they are listed).
    """
    from micado.config.store import MasterStore

    stored: list[str] = [record.id for record in MasterStore().list()]
    if len(stored) != 1:
        known = f"stored masters: {', '.join(stored)}" if stored else "no master is stored"
        raise errors.InvalidArgument(
            f"which master? give --master ID (or set {ENV_MASTER}) or --endpoint URL "
            f"(or set MICADO_API_ENDPOINT); {known}")
    return stored[0]


def _endpoint_client(args: argparse.Namespace) -> tuple[MicadoClient, str]:
    """The client of ``--endpoint`` (or ``$MICADO_API_ENDPOINT``), the options overriding the environment."""
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


def app_command(args: argparse.Namespace, out: Out) -> None:
    """Run ``micado app COMMAND``, printing the result with ``out``.

    Raises:
        MicadoException: as the :class:`~micado.models.application.Applications` method it calls.
    """
    if args.command == "demo":
        from micado.cli.demo import demo_command

        demo_command(args, out)
        return
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
        elif args.command == "create":
            _create(args, apps, command, out)
        elif args.command == "update":
            source = {"file": args.file} if args.file else {"url": args.url}
            app = apps.update(args.app_id, params=parse_params(args.param), **source)
            out({"id": app.id, "updated": True}, f"updated application {app.id}")
        elif args.command == "delete":
            apps.delete(args.app_id, force=args.force)
            out({"id": args.app_id, "deleted": True}, f"deleted application {args.app_id}")


def _create(args: argparse.Namespace, apps: Applications, command: str, out: Out) -> None:
    source = {"file": args.file} if args.file else {"url": args.url}
    params = parse_params(args.param)
    try:
        app = apps.create(app_id=args.app_id, params=params, dryrun=args.dry_run, **source)
    except errors.BadRequest as error:
        explained = _second_application(error, apps, command)
        if explained is error:
            raise
        raise explained from error
    out({"id": app.id, "created": True, "dryrun": args.dry_run},
        f"created{' (dry run)' if args.dry_run else ''} application {app.id}")


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
