"""Running ``ansible-playbook`` on a prepared working copy.

The run is a child process in its own process group, with an explicit
environment (no ``ANSIBLE_*`` variable of the caller, no ``~/.ansible.cfg``, no
``~/.ansible`` folder), its output streamed line by line to the master's log file
and its task names to the progress callback. A failure becomes an
:class:`~micado.exceptions.InstallError` naming the failing task and the log; a run
past its deadline is killed with its whole process group and becomes a
:class:`~micado.exceptions.MicadoTimeout`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, TextIO

from micado._processes import descendants, marked_processes, terminate
from micado.config import paths
from micado.exceptions import InstallError, MicadoTimeout
from micado.progress import ProgressCallback, as_callback, wait_until
from micado.installer.executable import ENV_ANSIBLE_PLAYBOOK, ansible_playbook_command, ansible_playbook_override

if TYPE_CHECKING:
    from micado.installer.playbooks import Layout

__all__ = ["ENV_ANSIBLE_PLAYBOOK", "WorkDir", "run_playbook", "ansible_playbook_command", "ansible_playbook_override",
           "remove_secret_files", "make_control_dir", "close_connections"]

logger = logging.getLogger(__name__)

STAGE = "ansible"
MASK = "********"
#: Environment variable set in every process of a run (``<master id>/<random>``), to find them all.
RUN_MARKER = "MICADO_ANSIBLE_RUN"

# Variables passed through from the caller's environment; everything else is dropped.
_KEPT_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "VIRTUAL_ENV")
_TASK_RE = re.compile(r"^(?:TASK|RUNNING HANDLER) \[(?P<name>.*)\] \**\s*$")
_FAILED_RE = re.compile(r"^(?:fatal|failed): \[(?P<host>[^\]]+)\]")
_UNREACHABLE = "UNREACHABLE!"
_IGNORED = "...ignoring"
_RESULT_RE = re.compile(r"^(?P<result>ok|changed|skipping|fatal|failed|unreachable): \[")
#: Ansible's word for a task's result -> the word progress reports.
_RESULTS = {"ok": "ok", "changed": "changed", "skipping": "skipped", "unreachable": "unreachable"}
_ERROR_RE = re.compile(r"^(?:ERROR! |\[ERROR\]: )(?P<message>.*)")


@dataclass(frozen=True)
class WorkDir:
    """The per-master working copy made by :func:`prepare_workdir`.

    Attributes:
        master_id: the master it belongs to.
        path: the working folder (mode 0700).
        layout: the playbook layout.
        run_dir: the folder ``ansible-playbook`` runs in.
        playbook: the main playbook, relative to ``run_dir``.
        inventory: the inventory file.
        config: our ``ansible.cfg`` (``ANSIBLE_CONFIG``).
        extra_vars: the extra-vars file (mode 0600): the web login as the release's
            ``security`` mapping, and the settings.
        cloud_credentials: the copy of ``credentials-cloud-api.yml`` where the release
            reads it (mode 0600).
        secret_files: the files holding secrets; :func:`run_playbook` removes them when
            the play ends, whatever the outcome.
        redact: secrets to mask in the log (never shown in ``repr``).
        vault_password: the password of the vaulted credentials files copied (never
            shown in ``repr``), handed to ``ansible-playbook`` through a pipe; ``None``:
            none is vaulted.
    """

    master_id: str
    path: Path
    layout: Layout
    run_dir: Path
    playbook: str
    inventory: Path
    config: Path
    extra_vars: Path
    cloud_credentials: Path
    secret_files: tuple[Path, ...] = ()
    redact: tuple[str, ...] = field(default=(), repr=False)
    vault_password: str | None = field(default=None, repr=False)


def _vault_pipe(password: str) -> int:
    """The read end of a pipe that holds ``password``, for ``--vault-password-file /dev/fd/<fd>``.

    Why a pipe: the password then exists only in this process and in the pipe's kernel
    buffer until ``ansible-playbook`` reads it at start (it reads its vault password
    files once, before the play). Nothing is written to disk, nothing is left once the
    run ends, and neither the command line nor the environment (which every task's
    processes inherit, and ``/proc/<pid>/environ`` shows) holds it. A password is at
    most 4 KiB (:data:`~micado.config.credentials.vault.MAX_VAULT_PASSWORD`), far below
    a pipe's buffer, so the write never blocks.
    """
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, password.encode("utf-8") + b"\n")
    finally:
        os.close(write_end)
    return read_end


def _environment(work: WorkDir, control_dir: Path, marker: str) -> dict[str, str]:
    env = {name: os.environ[name] for name in _KEPT_ENV if name in os.environ}
    env[RUN_MARKER] = marker  # inherited by every process of the run: how they are all found
    if "UTF-8" not in (env.get("LC_ALL") or env.get("LC_CTYPE") or env.get("LANG") or "").upper():
        env["LC_ALL"] = "C.UTF-8"  # ansible-core refuses to start without a UTF-8 locale
    env.update(
        {
            "ANSIBLE_CONFIG": str(work.config),
            "ANSIBLE_HOME": str(work.path / ".ansible"),
            "ANSIBLE_HOST_KEY_CHECKING": "True",
            "ANSIBLE_NOCOLOR": "True",
            "ANSIBLE_FORCE_COLOR": "False",
            # Unix socket paths are limited to ~100 bytes: keep the control path short.
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir),
            # ssh's own %C, as micado.installer.ssh.control_path: the play reuses the
            # connection the SSH wait opened, and the certificate copy reuses it after.
            "ANSIBLE_SSH_CONTROL_PATH": "%(directory)s/%%C",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@dataclass
class _Progress:
    """What the output has told so far: the current task, its result, and the failures not ignored.

    :meth:`feed` turns Ansible's lines into progress messages: the task's name when it
    starts, then ``"<task>: ok"`` (``changed``, ``skipped``, ``failed``, ``failed
    (ignored)``, ``unreachable``) at its first result, so a skipped task never reads
    like a failure.
    """

    task: str | None = None
    failures: list[tuple[str | None, str]] = field(default_factory=list)
    unreachable: bool = False
    error: str | None = None
    reported: bool = False
    pending_failure: str | None = None

    def feed(self, line: str) -> list[str]:
        """Digest one output line; return the progress messages it makes (task start or result)."""
        messages: list[str] = []
        if self.pending_failure is not None:  # a failure's verdict waits for a possible "...ignoring"
            ignored = line.strip() == _IGNORED
            messages.append(f"{self.task}: {self.pending_failure}{' (ignored)' if ignored else ''}")
            self.pending_failure = None
        match = _TASK_RE.match(line)
        if match:
            self.task, self.reported = match.group("name"), False
            return [*messages, self.task]
        result = _RESULT_RE.match(line)
        if _FAILED_RE.match(line):
            self.failures.append((self.task, line.strip()))
            self.unreachable = self.unreachable or _UNREACHABLE in line
            if not self.reported and self.task is not None:
                self.pending_failure = "unreachable" if _UNREACHABLE in line else "failed"
                self.reported = True
        elif line.strip() == _IGNORED and self.failures:
            self.failures.pop()  # ignore_errors: that failure did not stop the play
        elif result is not None and not self.reported and self.task is not None:
            self.reported = True
            messages.append(f"{self.task}: {_RESULTS[result.group('result')]}")
        elif self.error is None:
            error = _ERROR_RE.match(line)
            if error:
                self.error = error.group("message").strip()
        return messages

    def flush(self) -> list[str]:
        """The message still held back at the end of the output."""
        if self.pending_failure is None:
            return []
        message, self.pending_failure = f"{self.task}: {self.pending_failure}", None
        return [message]


def _masks(secrets: Sequence[str]) -> list[str]:
    """Every form a secret can take in Ansible's output: as is, and JSON-escaped."""
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            forms |= {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    return sorted(forms, key=len, reverse=True)  # longest first: no half-masked leftovers


def _pump(stream: IO[str], log: TextIO, secrets: Sequence[str], events: queue.Queue[str | None]) -> None:
    """Copy the child's output to the log, masked, and queue every line; ``None`` at EOF."""
    try:
        for line in stream:
            for secret in secrets:
                line = line.replace(secret, MASK)
            events.put(line)
            if log.closed:  # the run is over and something still holds the pipe open
                continue
            log.write(line)
            log.flush()
    finally:
        events.put(None)


def _stop_tree(process: subprocess.Popen[str], marker: str, grace: float = 5.0) -> None:
    """Stop ``ansible-playbook`` and every process it started, wherever they went.

    SIGTERM to its process group first (the lead and most children), then every
    process that still carries the run's marker variable or descends from the lead:
    Ansible's workers call ``setsid()`` and leave the group, and one blocked on a pipe
    would otherwise live on holding an SSH session to the master.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(MicadoTimeout):
        wait_until(process.poll, what="ansible-playbook to exit", timeout=grace, interval=0.05, max_interval=0.2)
    _stop_marked(process, marker, grace)


def _stop_marked(process: subprocess.Popen[str], marker: str, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL, whatever of the run is still alive (nothing, after a clean run)."""

    def remaining() -> set[int]:
        found = marked_processes({RUN_MARKER: marker})
        if process.poll() is None:
            found |= {process.pid} | descendants(process.pid)
        return found

    try:
        terminate(remaining, f"ansible-playbook run {marker}", grace=grace, stage=STAGE)
    except MicadoTimeout as exc:  # SIGKILL cannot be ignored: only an unkillable (D state) process
        logger.error("processes of %s outlived SIGKILL: %s", marker, exc)
    process.poll()


#: Start of the control folders' names; the owning process id follows, so that
#: ``cleanup()`` removes only the folders of processes that are gone.
CONTROL_DIR_PREFIX = "micado-cp-"


def make_control_dir() -> Path:
    """A private folder for ssh's ControlPersist sockets (see :func:`close_connections`).

    Named ``micado-cp-<pid>-<random>``. A Unix socket path holds at most ~104 bytes and
    ssh appends ~45 to the folder, so a long ``$TMPDIR`` (pytest's, macOS's) falls back
    to ``/tmp``.
    """
    for base in (tempfile.gettempdir(), "/tmp"):
        if len(base) <= 48 and os.access(base, os.W_OK):
            return Path(tempfile.mkdtemp(prefix=f"{CONTROL_DIR_PREFIX}{os.getpid()}-", dir=base))
    raise InstallError("no writable temporary folder with a path short enough for ssh control sockets; set TMPDIR=/tmp")


def close_connections(control_dir: Path) -> None:
    """Ask every ssh ControlPersist master whose socket is in ``control_dir`` to exit, then drop the folder."""
    for socket_path in control_dir.iterdir():
        try:
            subprocess.run(
                # -F /dev/null: like every ssh we run, this one reads nothing under ~/.ssh.
                ["ssh", "-F", "/dev/null", "-o", f"ControlPath={socket_path}", "-O", "exit", "micado-master"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            logger.warning("could not close the ssh connection %s: %s", socket_path, exc)
    shutil.rmtree(control_dir, ignore_errors=True)


def remove_secret_files(work: WorkDir) -> None:
    """Remove the working copy's files that hold secrets (credentials, extra vars)."""
    for path in work.secret_files:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            logger.error("could not remove %s, which holds secrets: %s", path, exc)


def run_playbook(
    work: WorkDir,
    *,
    timeout: float = 3600.0,
    progress: ProgressCallback | bool | None = None,
    log_path: Path | None = None,
    extra_args: Sequence[str] = (),
    control_dir: Path | None = None,
) -> Path:
    """Run the working copy's playbook with ``ansible-playbook``.

    Args:
        work: the working copy from :func:`micado.installer.ansible.prepare_workdir`.
        timeout: seconds before the run is killed.
        progress: receives ``("ansible", task name)`` for every task started.
        log_path: where the output goes; default :func:`micado.config.paths.log_file`
            of the master. Written with mode 0600, secrets masked.
        extra_args: more ``ansible-playbook`` arguments (e.g. ``["--tags", "start"]``).
        control_dir: the folder of a shared SSH connection to reuse (its owner closes
            it); default: a folder of the run's own, closed when the play ends.

    Returns:
        The log file.

    Raises:
        InstallError: the play failed or could not start; names the failing task and the log.
        MicadoTimeout: the play ran past ``timeout`` and was killed.
    """
    report = as_callback(progress)
    log_file = Path(log_path) if log_path is not None else paths.log_file(work.master_id)
    log_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    command = [*ansible_playbook_command(), "-i", str(work.inventory), "-e", f"@{work.extra_vars}",
               work.playbook, *extra_args]
    own_control_dir = control_dir is None
    control_dir = make_control_dir() if control_dir is None else control_dir
    marker = f"{work.master_id}/{secrets.token_hex(6)}"
    env = _environment(work, control_dir, marker)
    with contextlib.ExitStack() as closing, _create_log(log_file) as log:
        vault_fd = _vault_pipe(work.vault_password) if work.vault_password is not None else None
        if vault_fd is not None:
            closing.callback(os.close, vault_fd)  # the child has its own copy once started
            command += ["--vault-password-file", f"/dev/fd/{vault_fd}"]
        started = time.monotonic()
        report(STAGE, f"running {work.playbook} (MiCADO {work.layout.name} playbooks), log: {log_file}")
        log.write(f"# micado-client: {' '.join(command)}\n# in {work.run_dir}\n")
        log.flush()
        try:
            process = _start_playbook(command, work.run_dir, env, () if vault_fd is None else (vault_fd,))
        except OSError as exc:
            if own_control_dir:
                shutil.rmtree(control_dir, ignore_errors=True)
            remove_secret_files(work)
            raise InstallError(f"could not start {command[0]}: {exc}", log_path=log_file) from exc
        assert process.stdout is not None
        output = _Output(process.stdout, log, _masks(work.redact), report)
        try:
            code = _wait_for_exit(process, output, work=work, timeout=timeout, marker=marker, log_file=log_file)
        finally:
            output.join()
            if own_control_dir:
                close_connections(control_dir)
            _stop_marked(process, marker)  # e.g. an ssh master that did not close
            remove_secret_files(work)
        output.drain()  # the last lines, read after the process ended
    elapsed = time.monotonic() - started
    if code != 0:
        raise _failure(code, output.state, log_file)
    logger.info("ansible-playbook finished for master %s in %.1f s", work.master_id, elapsed)
    report(STAGE, f"playbook finished in {elapsed:.0f} s")
    return log_file


def _create_log(log_file: Path) -> TextIO:
    """A new, empty log file of mode 0600 (an earlier one of the same name is replaced)."""
    log_file.unlink(missing_ok=True)
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "w", encoding="utf-8")


def _start_playbook(command: Sequence[str], run_dir: Path, env: dict[str, str],
                    pass_fds: Sequence[int] = ()) -> subprocess.Popen[str]:
    """Start ``ansible-playbook`` in its own process group, standard output and error on one pipe.

    ``pass_fds``: descriptors the child inherits (the vault password's pipe).

    Raises:
        OSError: the program could not be started.
    """
    return subprocess.Popen(
        command,
        cwd=run_dir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,  # its own process group, so a timeout kills it all
        pass_fds=tuple(pass_fds),
    )


class _Output:
    """The output of a run: copied to the log by a thread of its own, digested in the caller's thread.

    Args:
        stream: the child's output pipe.
        log: the log file it is copied to, masked.
        masks: the forms of the secrets to mask (see :func:`_masks`).
        report: receives the progress messages, from the caller's thread only.
    """

    def __init__(self, stream: IO[str], log: TextIO, masks: Sequence[str], report: ProgressCallback) -> None:
        self.state = _Progress()
        self.report = report
        self._events: queue.Queue[str | None] = queue.Queue()
        self._pump = threading.Thread(
            target=_pump, args=(stream, log, masks, self._events), name="ansible-output", daemon=True
        )
        self._pump.start()

    def drain(self, announce: bool = True) -> None:
        """Digest the lines read so far, and report their progress messages unless ``announce`` is false."""
        while True:
            try:
                line = self._events.get_nowait()
            except queue.Empty:
                return
            messages = self.state.feed(line) if line is not None else self.state.flush()
            for message in messages if announce else ():
                self.report(STAGE, message)

    def join(self) -> None:
        """Wait (10 s at most) until the pump thread has copied the whole output."""
        self._pump.join(timeout=10)


def _wait_for_exit(process: subprocess.Popen[str], output: _Output, *, work: WorkDir, timeout: float,
                   marker: str, log_file: Path) -> int:
    """Wait for ``ansible-playbook`` to exit, reporting its output as it comes; return its exit code.

    On a timeout, or anything raised meanwhile (the progress callback, Ctrl-C), the
    whole run is stopped first.

    Raises:
        MicadoTimeout: the run went past ``timeout``; names the task it was at and the log.
    """

    def finished() -> int | None:
        output.drain()
        return process.poll()

    try:
        return wait_until(
            finished,
            what=f"ansible-playbook {work.playbook} on master {work.master_id}",
            timeout=timeout,
            stage=STAGE,
            progress=output.report,
            interval=0.05,
            max_interval=0.25,
            report_every=60.0,
        )
    except MicadoTimeout as exc:
        _stop_tree(process, marker)
        output.join()
        output.drain(announce=False)
        task = output.state.task
        raise MicadoTimeout(
            f"ansible-playbook ran past its deadline of {timeout:g} s"
            f"{f' at task {task!r}' if task else ''} and was stopped; "
            f"full output in {log_file}",
            what=exc.what,
            timeout=timeout,
        ) from exc
    except BaseException:
        _stop_tree(process, marker)  # e.g. the progress callback raised, or Ctrl-C
        raise


def _failure(code: int, state: _Progress, log_file: Path) -> InstallError:
    """The error for a run that exited with ``code``: the first failure not ignored."""
    task, line = state.failures[0] if state.failures else (state.task, None)
    if state.unreachable:
        what = f"the master became unreachable at task {task!r}"
    elif task is not None:
        what = f"task {task!r} failed"
    elif state.error is not None:
        what = f"ansible-playbook could not run: {state.error[:300]}"
    else:
        what = "ansible-playbook failed before any task"
    detail = f": {line[:300]}" if line else ""
    return InstallError(
        f"{what} (exit code {code}){detail}; full output in {log_file}", task=task, log_path=log_file
    )
