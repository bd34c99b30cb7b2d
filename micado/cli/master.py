"""The ``micado master`` commands: create, deploy, attach, info, list, destroy, cleanup, and those on a
running master: update-auth, reconfigure, edge, add-node, status, ssh, kubeconfig."""

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


def master_command(args: argparse.Namespace, out: Out) -> int | None:
    """Run ``micado master COMMAND``, printing the result with ``out``.

    Returns:
        The exit code, for the commands that have their own (``ssh``, ``status``).

    Raises:
        MicadoException: as the :class:`~micado.master.facade.MicadoMaster` method it calls.
    """
    client = MicadoClient(launcher=getattr(args, "launcher", DEFAULT_LAUNCHER), cloud=getattr(args, "cloud", None))
    if args.command in _DAY2_COMMANDS:
        return _DAY2_COMMANDS[args.command](args, client, out)
    _COMMANDS[args.command](args, client, out)
    return None


def _with_password(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with the MiCADO web password of ``$MICADO_PASSWORD``, when it is set and not empty."""
    if os.environ.get("MICADO_PASSWORD"):
        kwargs["micado_password"] = os.environ["MICADO_PASSWORD"]
    return kwargs


def _is_vaulted(path: object) -> bool:
    """Whether the file at ``path`` starts as ``ansible-vault`` writes (unreadable files: no; the library says why)."""
    from micado.config.credentials.vault import is_vaulted

    try:
        with open(str(path), "rb") as handle:
            return is_vaulted(handle.read(32))
    except OSError:
        return False


def _with_vault_password(args: argparse.Namespace, kwargs: dict[str, Any], cloud_file: object = None,
                         *files: object) -> dict[str, Any]:
    """``kwargs`` with the vault password: of ``--vault-password-file``, else asked for on a terminal when
    ``cloud_file`` (default: the MiCADO dir's credentials file) or one of ``files`` is vaulted and
    ``$MICADO_VAULT_PASSWORD_FILE`` is not set (the library reads that one)."""
    from micado.config import paths
    from micado.config.credentials import vault

    if getattr(args, "vault_password_file", None):
        kwargs["vault_password"] = vault.read_password_file(args.vault_password_file)
        return kwargs
    if os.environ.get(vault.ENV_VAULT_PASSWORD_FILE) or not sys.stdin.isatty():
        return kwargs
    candidates = [cloud_file or paths.credentials_file(), *(file for file in files if file)]
    if any(_is_vaulted(file) for file in candidates):
        import getpass

        kwargs["vault_password"] = vault.check_vault_password(getpass.getpass("Vault password: "))
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
        _with_vault_password(args, kwargs, None, kwargs.get("registry_credentials"), kwargs.get("gce_credentials"))
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
        _with_vault_password(args, kwargs, None, kwargs.get("registry_credentials"), kwargs.get("gce_credentials"))
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
    data = {**client.master.info(), "urls": client.master.urls()}
    if args.show_password:
        login = client.master.credentials()
        data = {**data, "micado_password": login.password, "grafana_password": login.grafana_password}
    lines = [f"{key}: {'-' if value is None else value}" for key, value in data.items() if key != "urls"]
    lines += [f"{name} url: {url}" for name, url in data["urls"].items()]
    out(data, "\n".join(lines))


def _list(args: argparse.Namespace, client: MicadoClient, out: Out) -> None:
    records = client.master.list()
    rows = [[r["id"], r["state"], r["ip"] or "-", r["endpoint"] or "-", r.get("created") or "-"] for r in records]
    headers = ["ID", "STATE", "IP", "ENDPOINT", "CREATED"]
    if args.status:
        ready = [r["id"] for r in records if r["state"] == "ready"]
        found = dict(zip(ready, client.master.status_of(ready), strict=True))
        for record, row in zip(records, rows, strict=True):
            status = found.get(record["id"])
            record["status"] = status.as_dict() if status is not None else None
            row.append("-" if status is None else status.summary())
        headers.append("LIVE")
    out(records, table(rows, headers) if rows else "no masters")


def _destroy(args: argparse.Namespace, client: MicadoClient, out: Out) -> None:
    master_id = resolve_master_id(client, args.master_id)
    record = next((r for r in client.master.list() if r["id"] == master_id), None)
    if record is not None:  # an unknown id goes on to the library's error, which lists the known ones
        confirm(f"Destroy master {master_id} ({record['ip'] or 'no address'}), its VM and its applications?",
                assume_yes=args.yes)
    client.master.destroy(master_id, progress=ProgressLine(sys.stderr), **_with_vault_password(args, {}))
    out({"id": master_id, "destroyed": True}, f"destroyed master {master_id}")


def _cleanup(args: argparse.Namespace, client: MicadoClient, out: Out) -> None:
    items = client.master.cleanup(dry_run=args.dry_run, progress=ProgressLine(sys.stderr), **cleanup_options(args),
                                  **_with_vault_password(args, {}))
    out([vars(item) for item in items], "\n".join(map(str, items)) or "nothing to clean up")
    if any(item.error for item in items):
        raise errors.MicadoException("some of what was found could not be removed (see above)")


def _chosen_master(client: MicadoClient, given: str | None) -> str:
    """The master a day-2 command acts on: the id (or prefix) given, ``$MICADO_MASTER``, or the only stored one.

    Raises:
        InvalidArgument: none of these names one (the stored masters are listed).
    """
    from micado.cli.parser import ENV_MASTER

    chosen = given if given is not None else os.environ.get(ENV_MASTER)
    if chosen is None:
        stored = [record["id"] for record in client.master.list()]
        if len(stored) != 1:
            known = f"stored masters: {', '.join(stored)}" if stored else "no master is stored"
            raise errors.InvalidArgument(f"which master? give its id (or set {ENV_MASTER}); {known}")
        chosen = stored[0]
    master_id = resolve_master_id(client, chosen)
    client.master.attach(master_id=master_id)
    return master_id


def _update_auth(args: argparse.Namespace, client: MicadoClient, out: Out) -> None:
    master_id = _chosen_master(client, args.master_id)
    progress = ProgressLine(sys.stderr)
    try:
        vault = _with_vault_password(args, {}, args.credentials_file, args.registry_credentials, args.gce_credentials)
        log = client.master.update_auth(args.credentials_file, args.registry_credentials,
                                        gce_credentials=args.gce_credentials, progress=progress, **vault)
    finally:
        progress.done()
    out({"id": master_id, "updated": True, "log": str(log)}, f"master {master_id}: credentials updated (log: {log})")


def _reconfigure(args: argparse.Namespace, client: MicadoClient, out: Out) -> None:
    master_id = _chosen_master(client, args.master_id)
    progress = ProgressLine(sys.stderr)
    try:
        vault = _with_vault_password(args, {})
        settings = client.master.reconfigure(parse_settings(args.settings), progress=progress, **vault)
    finally:
        progress.done()
    shown = ", ".join(f"{key}={json.dumps(value)}" for key, value in settings.items()) or "the release's defaults"
    out({"id": master_id, "settings": settings}, f"master {master_id} reconfigured: {shown}")


def _edge(args: argparse.Namespace, client: MicadoClient, out: Out) -> None:
    master_id = _chosen_master(client, args.master_id)
    progress = ProgressLine(sys.stderr)
    try:
        written = client.master.edge_files(args.output, progress=progress)
    finally:
        progress.done()
    files = {name: str(path) for name, path in written.items()}
    out({"id": master_id, "files": files},
        "\n".join([f"wrote {path}" for path in files.values()]
                  + [f"on the edge device: fill in YOUR_UNIQUE_EDGE_HOSTNAME and YOUR_EDGE_PUBLIC_IP in "
                     f"{files.get('connect_edge.sh', 'connect_edge.sh')}, then run it there (it holds the join "
                     "token: keep it private)"]))


def _add_node(args: argparse.Namespace, client: MicadoClient, out: Out) -> None:
    master_id = _chosen_master(client, args.master_id)
    progress = ProgressLine(sys.stderr)
    try:
        client.master.add_agent(args.host, args.ssh_key, ssh_user=args.ssh_user, ssh_port=args.ssh_port,
                                name=args.name, progress=progress)
    finally:
        progress.done()
    agents = client.master.info().get("agents") or []
    out({"id": master_id, "agents": agents}, f"master {master_id}: {args.host} joined as an agent")


def _status(args: argparse.Namespace, client: MicadoClient, out: Out) -> int:
    if args.all and args.master_ids:
        raise errors.InvalidArgument("give master ids or --all, not both")
    if args.all:
        ids = [record["id"] for record in client.master.list() if record["state"] == "ready"]
    elif args.master_ids:
        ids = [resolve_master_id(client, given) for given in args.master_ids]
    else:
        ids = [_chosen_master(client, None)]
    results = client.master.status_of(ids, timeout=args.timeout)
    lines = []
    for status in results:
        lines.append(f"{status.master_id}: {status.summary()}")
        lines += [f"  {check.name}: {'ok' if check.ok else 'FAILED'} ({check.detail}, {check.seconds:.2f} s)"
                  for check in status.checks]
    out([status.as_dict() for status in results], "\n".join(lines) or "no masters")
    return 0 if all(status.ok for status in results) else 1


def _ssh(args: argparse.Namespace, client: MicadoClient, out: Out) -> int:
    import subprocess

    _chosen_master(client, args.master_id)
    argv = client.master.ssh_command(list(getattr(args, "remote_command", None) or []))
    try:
        return subprocess.run(argv, check=False).returncode
    except OSError as exc:
        raise errors.MicadoException(f"could not run ssh: {exc.strerror or exc}") from None


def _kubeconfig(args: argparse.Namespace, client: MicadoClient, out: Out) -> None:
    master_id = _chosen_master(client, args.master_id)
    result = client.master.kubeconfig(args.output)
    text = f"wrote {result.path} (mode 0600; server {result.server}): kubectl --kubeconfig {result.path} get nodes"
    out({"id": master_id, "path": str(result.path), "server": result.server, "reachable": result.reachable,
         "hint": result.hint}, text + (f"\n{result.hint}" if result.hint else ""))


_DAY2_COMMANDS: dict[str, Callable[[argparse.Namespace, MicadoClient, Out], int | None]] = {
    "update-auth": _update_auth,
    "reconfigure": _reconfigure,
    "edge": _edge,
    "add-node": _add_node,
    "status": _status,
    "ssh": _ssh,
    "kubeconfig": _kubeconfig,
}

_COMMANDS: dict[str, Callable[[argparse.Namespace, MicadoClient, Out], None]] = {
    "create": _create,
    "deploy": _deploy,
    "attach": _attach,
    "info": _info,
    "list": _list,
    "destroy": _destroy,
    "cleanup": _cleanup,
}
