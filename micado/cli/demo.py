"""``micado app demo``: list the demo ADTs of a release, or write one out to fill in."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from micado import exceptions as errors
from micado.cli.output import Out, ProgressLine
from micado.cli.parser import ENV_MASTER
from micado.config.bounded_yaml import safe_load
from micado.demos import Demo, choose_demo, fill, release_demos, short_field, unfilled_fields

__all__ = ["demo_command"]


def demo_command(args: argparse.Namespace, out: Out) -> None:
    """Run ``micado app demo [NAME]``: the release's demos, or NAME for a cloud written to a file.

    The release is ``--playbook``/``--micado-version`` when given, else the one the master
    runs (``--master``, ``$MICADO_MASTER`` or the only stored master), else the default
    release of ``master create``.

    Raises:
        InvalidArgument: no such demo or cloud, a ``--set`` naming no placeholder, or an
            output file that exists (without ``--force``) or cannot be written.
        MicadoException: the release cannot be had.
    """
    demos, where, master_cloud = _release_demos(args)
    if args.name is None:
        clouds: dict[str, list[str]] = {}
        for demo in demos:
            clouds.setdefault(demo.name, []).append(demo.cloud)
        text = "\n".join(f"{name}: {', '.join(found)}" for name, found in clouds.items())
        out({"release": where, "demos": [{"name": name, "clouds": found} for name, found in clouds.items()]},
            f"demos of {where} (micado app demo NAME --cloud CLOUD):\n{text}" if clouds else f"{where} has no demos")
        return
    cloud = args.cloud if args.cloud is not None else master_cloud
    if args.cloud is None and master_cloud is not None and not any(
            demo.name == args.name.lower() and demo.cloud == master_cloud for demo in demos):
        cloud = None  # the master's cloud has none: the demo's own clouds decide (and are listed)
    demo = choose_demo(demos, args.name, cloud, where=where)
    text = fill(demo.text(), _fill_values(args.fill), shown=demo.file_name) if args.fill else demo.text()
    left = [short_field(path) for path in unfilled_fields(safe_load(text))]
    if args.output == "-":
        sys.stdout.write(text)
        return
    target = Path(args.output) if args.output else Path(demo.file_name)
    _write(target, text, force=args.force)
    todo = f"fill in {', '.join(left)}, then run" if left else "ready: run"
    out({"demo": demo.name, "cloud": demo.cloud, "release": where, "file": str(target), "fill": left},
        f"wrote {target} ({demo.name} for {demo.cloud}, from {where}); {todo}: micado app create --file {target}")


def _release_demos(args: argparse.Namespace) -> tuple[list[Demo], str, str | None]:
    """The demos, the release they come from (for messages) and the master's cloud (``None`` without a master)."""
    progress = ProgressLine(sys.stderr)
    if args.playbook is not None or args.micado_version is not None:
        return (release_demos(args.playbook, args.micado_version, progress=progress),
                f"the release {args.playbook or args.micado_version}", None)
    master = args.master if args.master is not None else os.environ.get(ENV_MASTER) or _only_master()
    if master is None:
        from micado.installer.playbooks import PlaybookSource

        return release_demos(progress=progress), f"the default release {PlaybookSource(None).version}", None
    from micado.client import MicadoClient
    from micado.launcher.registry import DEFAULT_LAUNCHER, launcher_class

    client = MicadoClient(launcher=DEFAULT_LAUNCHER)
    master = client.master.store.resolve(master)
    client.master.attach(master_id=master)
    record = client.master.store.get(master)
    release = record.extra.get("release") or {}
    shown = release.get("version") or release.get("source") or record.extra.get("micado_version") or "?"
    try:
        cloud: str | None = launcher_class(record.launcher).credential_type
    except errors.InvalidArgument:  # a launcher not installed here: the demo's clouds are listed instead
        cloud = None
    return client.master.demos(progress=progress), f"master {master}'s release {shown}", cloud


def _only_master() -> str | None:
    from micado.config.store import MasterStore

    stored = MasterStore().list()
    return stored[0].id if len(stored) == 1 else None


def _fill_values(pairs: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise errors.InvalidArgument(f"--set {pair!r} is not FIELD=VALUE")
        values[name] = value
    return values


def _write(target: Path, text: str, *, force: bool) -> None:
    if target.exists() and not force:
        raise errors.InvalidArgument(f"{target} exists: give --force to overwrite it, or another --output")
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as error:
        raise errors.InvalidArgument(f"cannot write {target}: {error.strerror or error}") from None
