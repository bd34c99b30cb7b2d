"""What a killed ``master.create`` leaves behind, found and removed (``client.master.cleanup()``).

A process can be killed at any point (SIGKILL cannot be caught), so ``create`` records
its intent before touching the cloud: a record in state ``creating`` holding the launch
marks (server name and token), the cloud it went to and the creating process (process
identity and host). Everything the launch makes carries the MiCADO dir's store identity
next to the launch token (:data:`~micado.launcher.base.STORE_TAG`). From those,
:func:`clean_up` finds

* records stuck in ``creating`` whose process is gone (on this host: a create on
  another host is never taken as gone), with their servers, addresses, Ansible
  processes and working copies (which may hold plaintext credentials);
* servers and addresses on the recorded clouds that carry **this store's identity** but
  belong to no finished master and no create still running;
* working copies and ssh control folders that no master or running create owns.

A cloud account is often shared: what carries another store's identity, or none (made
by an earlier micado-client, or marked by other tooling), is listed as not ours and
left alone. Only ``include_unowned`` removes such resources, and never one launched
less than ``min_age`` seconds ago or whose launch time is unknown.
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
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from micado._processes import alive, identity, processes_with_variable, still_running, terminate
from micado.config import paths
from micado.master.records import cloud_fields_of
from micado.exceptions import MicadoException
from micado.progress import ProgressCallback

if TYPE_CHECKING:
    from micado.config.store import MasterRecord
    from micado.launcher.base import Launcher, MarkedResource

__all__ = ["CleanupItem", "clean_up", "creator_identity", "creator_running", "DEFAULT_MIN_AGE"]

#: Seconds since its launch before ``include_unowned`` may remove a resource that is not ours.
DEFAULT_MIN_AGE = 7200.0

log = logging.getLogger(__name__)



@dataclass
class CleanupItem:
    """One thing :meth:`MicadoMaster.cleanup` found.

    Attributes:
        kind: ``"record"``, ``"server"``, ``"address"``, ``"processes"``,
            ``"working copy"`` or ``"control folder"``.
        id: what identifies it (record id, cloud id, path, process ids).
        detail: a few words for people (name, address, why it is stale).
        removed: ``True`` once removed; ``False`` in a dry run, when removing failed
            or when it is left alone.
        error: why removing it failed, if it did.
        ours: ``False`` for a server or address that does not carry this MiCADO dir's
            store identity (another store's, or none).
        left_alone: why it is not removed (not ours, too young...), if it is not.
    """

    kind: str
    id: str
    detail: str = ""
    removed: bool = False
    error: str | None = field(default=None)
    ours: bool = True
    left_alone: str | None = None

    def __str__(self) -> str:
        if self.left_alone is not None:
            state = f"{'' if self.ours else 'not ours, '}left alone: {self.left_alone}"
        else:
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
    store_id: str,
    include_unowned: bool = False,
    min_age: float = DEFAULT_MIN_AGE,
) -> list[CleanupItem]:
    """Find (and unless ``dry_run``, remove) what killed creates left; see the module docstring.

    Args:
        records: every record of the store.
        launcher_for: the launcher for a record's cloud.
        forget: removes a stale record with its certificate and host key.
        dry_run: only find.
        report: receives ``("cleanup", message)`` events.
        store_id: this store's identity.
        include_unowned: also remove servers and addresses that are not ours, if older than ``min_age``.
        min_age: seconds.

    Returns:
        What was found, each item saying whether it was removed.
    """
    items: list[CleanupItem] = []
    live = [r for r in records if r.state == "ready" or creator_running(r)]
    stale = [r for r in records if r not in live]
    owned_servers = {r.extra.get("server_id") or r.id for r in live}
    owned_names = {r.name for r in live if r.name} | {r.extra.get("launch_name") for r in live}

    def act(item: CleanupItem, action: Callable[[], object] | None) -> None:
        items.append(item)
        if action is None:
            report("cleanup", f"leaving {item.kind} {item.id} alone ({item.detail}): {item.left_alone}")
            return
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
        _cloud_leftovers(records, launcher_for, _Owners(store_id, owned_servers, owned_names, stale),
                         include_unowned, min_age, report),
        _stale_leftovers(stale, forget),
        _folder_leftovers(live),
    ):
        act(item, action)
    return items


_Leftover = tuple[CleanupItem, Callable[[], object] | None]


@dataclass(frozen=True)
class _Owners:
    """What this store owns: its identity, and the servers and names of its live and stale records."""

    store_id: str
    servers: set[str]
    names: set[str | None]
    stale: list[MasterRecord]

    def ours(self, resource: MarkedResource) -> bool:
        """It carries our store identity, or it has no identity (an earlier micado-client) and a
        stale record of ours names it (servers: by name and launch token)."""
        if resource.store is not None:
            return resource.store == self.store_id
        for record in self.stale:
            if resource.name == (record.extra.get("launch_name") or record.name):
                token = record.extra.get("launch_token")
                return resource.kind == "address" or not token or resource.token == token
        return False


def _cloud_leftovers(
    records: list[MasterRecord],
    launcher_for: Callable[[MasterRecord], Launcher],
    owners: _Owners,
    include_unowned: bool,
    min_age: float,
    report: ProgressCallback,
) -> Iterator[_Leftover]:
    """1. the clouds: servers and addresses that carry our marks and that nobody owns; what is not
    ours is listed and left alone (or, with ``include_unowned``, removed when old enough)."""
    seen: dict[tuple[str, str], MasterRecord] = {}
    for record in records:  # one look per cloud; a deployed host has none
        if record.launcher == "none":
            continue
        seen.setdefault((record.launcher, json.dumps(cloud_fields_of(record), sort_keys=True, default=str)), record)
    now = datetime.now(UTC)
    for (launcher_name, cloud), record in seen.items():
        launcher = launcher_for(record)
        report("cleanup", f"looking for servers and addresses of ours on the {launcher_name} cloud {cloud}")
        marked = launcher.marked()
        servers = [m for m in marked if m.kind == "server" and m.id not in owners.servers
                   and m.name not in owners.names]  # a finished master or a running create of ours: not listed
        verdicts = {m.id: _verdict(m, owners, include_unowned, min_age, now) for m in servers}
        removed = {server_id for server_id, (_, reason) in verdicts.items() if reason is None}
        for resource in servers:
            ours, reason = verdicts[resource.id]
            what = "launched by this MiCADO dir, no master" if ours else _not_ours(resource)
            yield _leftover(launcher, resource, f"{resource.name}, {what}", ours, reason, report)
        for resource in marked:
            if resource.kind != "address" or resource.name in owners.names:
                continue
            ours, reason = _verdict(resource, owners, include_unowned, min_age, now)
            if resource.attached_to is not None and resource.attached_to not in removed:
                if ours and resource.attached_to in owners.servers:
                    continue  # the address of a live master of ours
                reason = reason or f"attached to server {resource.attached_to}, which stays"
            what = f"{resource.address}, allocated for {resource.name}" + ("" if ours else f", {_not_ours(resource)}")
            yield _leftover(launcher, resource, what, ours, reason, report)


def _leftover(launcher: Launcher, resource: MarkedResource, detail: str, ours: bool, reason: str | None,
              report: ProgressCallback) -> _Leftover:
    item = CleanupItem(resource.kind, resource.id, detail, ours=ours, left_alone=reason)
    return item, None if reason is not None else partial(launcher.remove_marked, resource, progress=report)


def _not_ours(resource: MarkedResource) -> str:
    if resource.store is not None:
        return f"made by another MiCADO dir (store identity {resource.store[:8]}...)"
    return "marked without a store identity (an earlier micado-client, or other tooling)"


def _verdict(resource: MarkedResource, owners: _Owners, include_unowned: bool, min_age: float,
             now: datetime) -> tuple[bool, str | None]:
    """``(ours, why it stays)``; ``why`` is ``None`` when the resource is to be removed."""
    if owners.ours(resource):
        elsewhere = _creator_elsewhere(resource.creator)
        return True, (None if elsewhere is None else
                      f"launched with this MiCADO dir's identity by {elsewhere}, but no record here names it "
                      "(a copy of this MiCADO dir?)")
    if not include_unowned:
        return False, "only --include-unowned (include_unowned=True) removes it"
    age = _age(resource.launched, now)
    if age is None:
        return False, "its launch time is unknown, so even --include-unowned leaves it"
    if age < min_age:
        return False, f"launched {_span(age)} ago, less than the minimum age of {_span(min_age)}"
    return False, None


def _creator_elsewhere(creator: str | None) -> str | None:
    """Who made a resource of ours, if that is a process still running here or one on another host."""
    if not creator:
        return None
    process, _, host = creator.rpartition("@")
    here = creator_mark_host()
    if host != here:
        return "a program on another host"
    return f"process {process.split('@')[0]}, still running" if still_running(process) else None


def creator_mark_host() -> str:
    """This host, as :func:`micado.launcher.base.creator_mark` writes it."""
    from micado.launcher.base import creator_mark

    return creator_mark().rpartition("@")[2]


def _age(launched: str | None, now: datetime) -> float | None:
    if not launched:
        return None
    try:
        when = datetime.fromisoformat(launched)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (now - when).total_seconds()


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g}{unit}"
    return f"{max(seconds, 0):.0f}s"


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
        if folder.name in owned_work or day2_copy_in_use(folder):
            continue
        why = "no day-2 command running for it" if "." in folder.name else "no create running for it"
        yield CleanupItem("working copy", str(folder), why), partial(_remove_tree, folder)
    for folder in _control_folders():
        yield (CleanupItem("control folder", str(folder), "ssh sockets of a program that has ended"),
               partial(_remove_tree, folder))


#: The file of a day-2 working copy naming the process that owns it (:mod:`micado.master.plays`).
OWNER_FILE = ".owner"
#: Seconds a day-2 working copy may lack its owner file (it is written right after the copy is made).
_OWNERLESS_GRACE = 120.0


def day2_copy_in_use(folder: Path) -> bool:
    """Whether a day-2 working copy (``<id>.<operation>-<hex>``) belongs to a command still running.

    Its owner file names the process (:func:`creator_identity`); a copy without one yet is
    taken as in use for a short while (the file is written right after the copy is made).
    """
    if "." not in folder.name:
        return False
    if (folder / OWNER_FILE).exists():
        try:
            owner = json.loads((folder / OWNER_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        if not isinstance(owner, dict):
            return False
        if owner.get("host") != socket.gethostname():
            return True  # only that host can tell
        return still_running(owner.get("process"))
    try:
        return time.time() - folder.stat().st_mtime < _OWNERLESS_GRACE
    except OSError:
        return False


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
