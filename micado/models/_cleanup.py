"""What a killed ``master.create`` leaves behind, found and removed (``client.master.cleanup()``).

A process can be killed at any point (SIGKILL cannot be caught), so ``create`` records
its intent before touching the cloud: a record in state ``creating`` holding the launch
marks (server name and token), the cloud it went to and the creating process. From
those, :func:`clean_up` finds

* records stuck in ``creating`` whose process is gone, with their servers, addresses,
  Ansible processes and working copies (which may hold plaintext credentials);
* servers and addresses on the recorded clouds that carry micado-client's launch marks
  but belong to no finished master and no create still running;
* working copies and ssh control folders that no master or running create owns.
"""

from __future__ import annotations

import getpass
import itertools
import json
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from micado._processes import alive, identity, processes_with_variable, still_running, terminate
from micado.config import paths
from micado.models._records import cloud_fields_of
from micado.exceptions import MicadoException
from micado.progress import ProgressCallback

if TYPE_CHECKING:
    from micado.config.store import MasterRecord
    from micado.launcher.base import Launcher

__all__ = ["CleanupItem", "clean_up", "creator_identity", "creator_running"]

log = logging.getLogger(__name__)



@dataclass
class CleanupItem:
    """One thing :meth:`MicadoMaster.cleanup` found.

    Attributes:
        kind: ``"record"``, ``"server"``, ``"address"``, ``"processes"``,
            ``"working copy"`` or ``"control folder"``.
        id: what identifies it (record id, cloud id, path, process ids).
        detail: a few words for people (name, address, why it is stale).
        removed: ``True`` once removed; ``False`` in a dry run or when removing failed.
        error: why removing it failed, if it did.
    """

    kind: str
    id: str
    detail: str = ""
    removed: bool = False
    error: str | None = field(default=None)

    def __str__(self) -> str:
        state = "removed" if self.removed else (f"NOT removed: {self.error}" if self.error else "found")
        return f"{self.kind} {self.id} ({self.detail}): {state}"


def creator_identity() -> dict[str, Any]:
    """What a ``creating`` record keeps of the process that creates it."""
    return {"host": socket.gethostname(), "process": identity(os.getpid())}


def creator_running(record: MasterRecord) -> bool:
    """Whether the process that started creating ``record`` still runs (on this host).

    A record made on another host is taken as running: only that host can tell.
    """
    creator = record.extra.get("creator") or {}
    if creator.get("host") != socket.gethostname():
        return True
    return still_running(creator.get("process"))


def clean_up(
    records: list[MasterRecord],
    launcher_for: Callable[[MasterRecord], Launcher],
    forget: Callable[[MasterRecord], None],
    *,
    dry_run: bool,
    report: ProgressCallback,
) -> list[CleanupItem]:
    """Find (and unless ``dry_run``, remove) what killed creates left; see the module docstring.

    Args:
        records: every record of the store.
        launcher_for: the launcher for a record's cloud.
        forget: removes a stale record with its certificate and host key.
        dry_run: only find.
        report: receives ``("cleanup", message)`` events.

    Returns:
        What was found, each item saying whether it was removed.
    """
    items: list[CleanupItem] = []
    live = [r for r in records if r.state == "ready" or creator_running(r)]
    stale = [r for r in records if r not in live]
    owned_servers = {r.extra.get("server_id") or r.id for r in live}
    owned_names = {r.name for r in live if r.name} | {r.extra.get("launch_name") for r in live}

    def act(item: CleanupItem, action: Callable[[], object]) -> None:
        items.append(item)
        report("cleanup", f"{'would remove' if dry_run else 'removing'} {item.kind} {item.id} ({item.detail})")
        if dry_run:
            return
        try:
            action()
            item.removed = True
        except MicadoException as exc:
            item.error = str(exc)
            log.warning("cleanup: could not remove %s %s: %s", item.kind, item.id, exc)

    # Each source is read lazily, so each item is acted on before the next one is looked for.
    for item, action in itertools.chain(
        _cloud_leftovers(records, launcher_for, owned_servers, owned_names, report),
        _stale_leftovers(stale, forget),
        _folder_leftovers(live),
    ):
        act(item, action)
    return items


_Leftover = tuple[CleanupItem, Callable[[], object]]


def _cloud_leftovers(
    records: list[MasterRecord],
    launcher_for: Callable[[MasterRecord], Launcher],
    owned_servers: set[str],
    owned_names: set[str | None],
    report: ProgressCallback,
) -> Iterator[_Leftover]:
    """1. the clouds: servers and addresses that carry our marks and that nobody owns."""
    seen: dict[tuple[str, str], MasterRecord] = {}
    for record in records:  # one look per cloud; a deployed host has none
        if record.launcher == "none":
            continue
        seen.setdefault((record.launcher, json.dumps(cloud_fields_of(record), sort_keys=True, default=str)), record)
    for (launcher_name, cloud), record in seen.items():
        launcher = launcher_for(record)
        report("cleanup", f"looking for servers and addresses of ours on the {launcher_name} cloud {cloud}")
        marked = launcher.marked()
        orphans = {m.id for m in marked if m.kind == "server" and m.id not in owned_servers
                   and m.name not in owned_names}
        for resource in marked:
            if resource.kind == "server" and resource.id in orphans:
                yield (CleanupItem("server", resource.id, f"{resource.name}, launched by micado-client, no master"),
                       partial(launcher.remove_marked, resource, progress=report))
        for resource in marked:
            if (resource.kind == "address" and resource.name not in owned_names
                    and (resource.attached_to is None or resource.attached_to in orphans)):
                yield (CleanupItem("address", resource.id, f"{resource.address}, allocated for {resource.name}"),
                       partial(launcher.remove_marked, resource, progress=report))


def _stale_leftovers(stale: list[MasterRecord], forget: Callable[[MasterRecord], None]) -> Iterator[_Leftover]:
    """2. stale records: their Ansible runs, working copies and the record itself."""
    from micado.installer.runner import RUN_MARKER

    for record in stale:
        server_id = record.extra.get("server_id")
        if server_id:
            pids = processes_with_variable(RUN_MARKER, f"{server_id}/")
            if pids:
                yield (CleanupItem("processes", " ".join(map(str, sorted(pids))), f"ansible-playbook for {server_id}"),
                       partial(terminate, partial(processes_with_variable, RUN_MARKER, f"{server_id}/"),
                               f"the run for {server_id}", stage="cleanup"))
        yield (CleanupItem("record", record.id, f"stuck in 'creating' since {record.created}; its process is gone"),
               partial(forget, record))


def _folder_leftovers(live: list[MasterRecord]) -> Iterator[_Leftover]:
    """3. working copies and control folders nobody owns."""
    work_root = paths.micado_dir() / "work"
    owned_work = {r.extra.get("server_id") or r.id for r in live if r.state == "creating"}
    for folder in sorted(work_root.iterdir()) if work_root.is_dir() else []:
        if folder.name not in owned_work:
            yield CleanupItem("working copy", str(folder), "no create running for it"), partial(_remove_tree, folder)
    for folder in _control_folders():
        yield (CleanupItem("control folder", str(folder), "ssh sockets of a program that has ended"),
               partial(_remove_tree, folder))


def _remove_tree(folder: Path) -> None:
    try:
        shutil.rmtree(folder)
    except OSError as exc:
        raise MicadoException(f"could not remove {folder}: {exc.strerror or exc}") from None


def _control_folders() -> list[Path]:
    """This user's ssh control folders whose owning process is gone (see
    :func:`micado.installer.runner.make_control_dir`); a folder of a running program,
    whatever its MiCADO dir, is never taken."""
    from micado.installer.runner import CONTROL_DIR_PREFIX

    user = getpass.getuser()
    found = []
    for base in {Path(tempfile.gettempdir()), Path("/tmp")}:
        try:
            entries = list(base.glob(f"{CONTROL_DIR_PREFIX}*"))
        except OSError:
            continue
        for entry in entries:
            owner = entry.name[len(CONTROL_DIR_PREFIX):].partition("-")[0]
            if not owner.isdigit() or alive(int(owner)):
                continue  # a running program's (or one of another naming): not ours to take
            try:
                if entry.is_dir() and not entry.is_symlink() and entry.owner() == user:
                    found.append(entry)
            except (OSError, KeyError):
                continue
    return sorted(found)
