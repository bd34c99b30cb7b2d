"""The master store: one record per MiCADO master this client made (``data.yml``).

A master created by one program can be attached from another, so every master's
endpoint, certificate and web credentials are kept in ``<MiCADO dir>/data.yml``.

On disk:

* **Format.** The file is written as JSON, which is YAML 1.2 too, so any YAML tool
  reads it and it parses fast even with hundreds of records::

      {"micado_client_store": 2, "key_id": "<12 hex>", "masters": [{"id": ..., ...}]}

  Files written by micado-client 0.9 (``masters: [{<id>: {...}}]``, password in
  plaintext) are read as they are, and rewritten in the new form (password
  encrypted) by the next change to the store.
* **Shared with the official micado-client 0.12**, whose masters are under
  ``micados: [{<id>: {...}}]`` (password in plaintext): they are listed as *imported*
  (state :data:`~micado.config.record.IMPORTED`) and can be attached for their
  applications, but micado-client never changes them: a write keeps the ``micados:``
  entry (and any other top-level key it does not own) byte for byte, before its own
  keys, and the whole file is then YAML. The official client keeps our keys when it
  adds a master to such a file, but drops them from a file without ``micados:`` (see
  the changes page); ``MICADO_CLI_DIR`` keeps the two clients apart.
* **Secrets** (the MiCADO web password) are encrypted with AES-256-GCM, a fresh
  random nonce per value, the record id and field name bound in as associated data
  (a value cannot be moved to another record). The key is 32 random bytes, taken from
  the environment variable ``MICADO_SECRET_KEY`` when set (64 hex digits, or base64),
  otherwise from ``<MiCADO dir>/secret.key`` (base64, mode 0600), which the first
  write creates. ``key_id`` (a hash of the key) tells a wrong key from a damaged file.
  Reads decrypt only what is asked for: :meth:`MasterStore.get` one record's secrets,
  :meth:`MasterStore.list` none (its records hold :data:`~micado.config.record.SEALED`),
  and a write keeps the ciphertexts of the records it does not change.
* **Writes** happen under an exclusive ``fcntl.flock`` on ``data.yml.lock``: read,
  change and write all inside the lock, so parallel programs lose nothing. The new
  content goes to a temporary file in the same directory, is fsync'ed and renamed over
  ``data.yml`` (then the directory is fsync'ed): a writer that dies at any moment
  leaves either the old or the new file, never a partial one. Files are 0600, the
  directory 0700. Readers take no lock: a rename is atomic.
* **A damaged file** (not YAML/JSON, wrong shape, undecryptable value; or larger than
  :data:`MAX_FILE_BYTES`, nested deeper than 64 levels, a number of thousands of
  digits; if not JSON, YAML over 256 KiB or 10,000 values or with aliases that expand
  past 100 nodes) raises
  :class:`~micado.exceptions.StoreError` naming the file and the problem, on reads
  *and* writes: micado-client never overwrites it. Fix it, or move it away to start
  an empty store.
* **The store identity** (``store-id``, 32 random hex digits, mode 0600, made on first
  need like the key file) names this MiCADO dir on the clouds: every server and address
  a create makes carries it, and ``cleanup`` acts only on what carries its own (see
  :meth:`MasterStore.identity`). A copy of the folder shares it.
* **Symbolic links** are not followed: a ``data.yml``, ``secret.key`` or ``store-id`` that is one
  raises :class:`~micado.exceptions.StoreError` (a write would replace the link with
  a file, and programs reaching the file through different links would not share
  the lock). Set ``MICADO_CLI_DIR`` to the folder that holds the files instead.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from micado.config.files import write_private
from micado.config import _store_format, crypto, paths
from micado.config.bounded_yaml import Refused, read_limited
from micado.config._store_format import STORE_FORMAT
from micado.config.record import SEALED, MasterRecord, validate_record
from micado.exceptions import InvalidArgument, MasterNotFound, MicadoTimeout, StoreError
from micado.progress import wait_until

__all__ = ["MasterRecord", "MasterStore", "ENV_KEY", "STORE_FORMAT"]

logger = logging.getLogger(__name__)

#: Environment variable with the store key: 64 hex digits, or the base64 of 32 bytes.
ENV_KEY = "MICADO_SECRET_KEY"
#: Bytes the store file may have: thousands of records (one takes under 1 KB). A larger
#: file is refused as damaged before it is parsed.
MAX_FILE_BYTES = 4 << 20
_MAX_KEY_FILE_BYTES = 1024  # the key is 44 characters of base64
_IDENTITY_RE = re.compile(r"^[0-9a-f]{32}$")
#: The 0.9-format store files already warned about in this process.
_LEGACY_WARNED: set[str] = set()


class MasterStore:
    """Add, get, list and remove :class:`MasterRecord` entries in ``data.yml``.

    Creating a store touches no file; the first write creates the MiCADO dir (0700),
    the key file and the store (0600).

    Args:
        path: the store file; default ``<MiCADO dir>/data.yml``. Its lock is
            ``<path>.lock`` and its key file ``secret.key`` in the same directory.
        lock_timeout: seconds to wait for another process's write to finish.
    """

    def __init__(self, path: Path | str | None = None, *, lock_timeout: float = 30.0) -> None:
        self.path = Path(path) if path is not None else paths.store_file()
        if path is None:
            self.lock_path, self.key_path = paths.store_lock_file(), paths.secret_key_file()
            self.identity_path = paths.store_identity_file()
        else:
            self.lock_path = self.path.with_name(self.path.name + ".lock")
            self.key_path = self.path.with_name(paths.SECRET_KEY_NAME)
            self.identity_path = self.path.with_name(paths.store_identity_file().name)
        self.lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"MasterStore({str(self.path)!r})"

    # --- reading ---------------------------------------------------------------------------

    def list(self) -> builtins.list[MasterRecord]:
        """Return every stored master, oldest first, their secrets not decrypted.

        The passwords of these records are :data:`~micado.config.record.SEALED`:
        listing decrypts nothing; :meth:`get` decrypts the one record asked for.
        The official micado-client's masters (state
        :data:`~micado.config.record.IMPORTED`) come after this library's.

        Raises:
            StoreError: the file is damaged, or its key is missing or wrong.
        """
        contents = self._read()
        return contents.records + contents.imported

    def get(self, master_id: str) -> MasterRecord:
        """Return the record of one master, its secrets decrypted.

        Args:
            master_id: the master id.

        Raises:
            InvalidArgument: ``master_id`` is not text, or is empty or blank.
            MasterNotFound: no master with that id (the known ids are listed).
            StoreError: the file is damaged (a secret of this record fails its
                integrity check, say), or its key is missing or wrong.
        """
        contents = self._read()
        every = contents.records + contents.imported
        return self._unseal(contents, every[self._index(every, master_id)])

    def identity(self) -> str:
        """This store's identity: 32 random hex digits kept in ``store-id`` (0600) beside the store.

        Every server and address a create makes carries it (next to the launch token),
        and ``cleanup`` removes only what carries its own store's identity. The first call
        creates the file, atomically (parallel programs agree on one identity); a copy of
        the MiCADO dir shares the identity of the original.

        Raises:
            StoreError: the file is a symbolic link, is damaged, or cannot be read or created.
        """
        existing = self._read_identity()
        if existing is not None:
            return existing
        if self.path.parent == paths.micado_dir():
            paths.ensure_dir()
        else:
            self.path.parent.mkdir(mode=paths.DIR_MODE, parents=True, exist_ok=True)
        try:
            made = write_private(self.identity_path, secrets.token_hex(16) + "\n", exclusive=True)
        except OSError as exc:
            raise StoreError(f"cannot create the store identity {self.identity_path}: {_reason(exc)}") from None
        found = self._read_identity()  # ours, or the one a parallel program made first
        if found is None:
            raise StoreError(f"the store identity {self.identity_path} appeared and vanished; try again")
        if made:
            _fsync_dir(self.identity_path.parent)
            logger.info("created the store identity %s", self.identity_path)
        return found

    def _read_identity(self) -> str | None:
        text = _read_private_file(self.identity_path, "the store identity", "is damaged")
        if text is None:
            return None
        value = text.strip()
        if not _IDENTITY_RE.match(value):
            raise StoreError(
                f"the store identity {self.identity_path} is damaged: it must hold 32 hex digits. "
                "micado-client will not replace it (the clouds know this MiCADO dir by it): restore it, or "
                "move it away to start a new identity (cleanup then leaves what the old one made alone)")
        return value

    def resolve(self, given: str) -> str:
        """Return the stored master id that ``given`` is, or is the only one to begin with.

        The command line takes a beginning of an id wherever it takes an id; this is
        where such a beginning is turned into the id. An empty or blank ``given`` is
        refused, never taken as the beginning of every id.

        Args:
            given: a master id, or a beginning of one.

        Returns:
            The full id.

        Raises:
            InvalidArgument: ``given`` is not text, is empty or blank, or several stored
                ids begin with it (they are listed).
            MasterNotFound: no stored id is or begins with ``given`` (the known ids are listed).
            StoreError: the store cannot be read.
        """
        _check_id(given)
        records = self.list()
        ids = [record.id for record in records]
        if given in ids:
            return given
        matches = [master_id for master_id in ids if master_id.startswith(given)]
        if len(matches) > 1:
            raise InvalidArgument(
                f"master id {given!r} is ambiguous: it begins {', '.join(matches)}; give more of it")
        if not matches:
            self._index(records, given)  # raises MasterNotFound, listing the known ids
        return matches[0]

    # --- writing ---------------------------------------------------------------------------

    def add(self, record: MasterRecord) -> MasterRecord:
        """Record a new master.

        Args:
            record: the master; ``created`` is set to now if ``None``.

        Returns:
            The record as stored (a copy).

        Raises:
            InvalidArgument: a field has the wrong type, or ``extra`` is not plain JSON.
            StoreError: a master with this id is already recorded, or the store
                cannot be read or written.
        """
        validate_record(record)
        _refuse_sealed(record, "add()")
        if record.created is None:
            record = dataclasses.replace(record, created=_now())
        stored = dataclasses.replace(record, extra=json.loads(json.dumps(record.extra)))

        def change(records: builtins.list[MasterRecord], contents: _store_format.Contents) -> None:
            if any(r.id == stored.id for r in records + contents.imported):
                raise StoreError(
                    f"a master with id {stored.id!r} is already recorded in {self.path}; "
                    "use update() to change it or remove() it first"
                )
            records.append(stored)

        self._modify(change)
        return dataclasses.replace(stored)

    def update(self, record: MasterRecord) -> MasterRecord:
        """Replace the record of a master already in the store (matched by id).

        Args:
            record: the new record; a ``created`` of ``None`` keeps the old value, and
                a :data:`~micado.config.record.SEALED` secret (a record from
                :meth:`list`) keeps the stored secret.

        Returns:
            The record as stored (a copy).

        Raises:
            InvalidArgument: a field has the wrong type, or ``extra`` is not plain JSON.
            MasterNotFound: no master with that id.
            StoreError: the store cannot be read or written.
        """
        validate_record(record)
        result: builtins.list[MasterRecord] = []

        def change(records: builtins.list[MasterRecord], contents: _store_format.Contents) -> None:
            index = self._index(records, record.id, contents)
            created = record.created if record.created is not None else records[index].created
            records[index] = dataclasses.replace(
                record, created=created, extra=json.loads(json.dumps(record.extra))
            )
            result.append(records[index])

        self._modify(change)
        return dataclasses.replace(result[0])

    def replace(self, old_id: str, record: MasterRecord) -> MasterRecord:
        """Swap one record for another, possibly under a new id, in one write.

        Used when a master being created gets its cloud id: there is never a moment
        with neither record (a program killed then would leave a VM no record knows).

        Args:
            old_id: the id of the record to replace.
            record: the new record; ``created`` is set to now if ``None``; a
                :data:`~micado.config.record.SEALED` secret keeps the old record's.

        Returns:
            The record as stored (a copy).

        Raises:
            InvalidArgument: a field has the wrong type, or ``extra`` is not plain JSON.
            MasterNotFound: no master with ``old_id``.
            StoreError: another record already has the new id, or the store cannot be
                read or written.
        """
        validate_record(record)
        if record.created is None:
            record = dataclasses.replace(record, created=_now())
        stored = dataclasses.replace(record, extra=json.loads(json.dumps(record.extra)))

        def change(records: builtins.list[MasterRecord], contents: _store_format.Contents) -> None:
            index = self._index(records, old_id, contents)
            if any(r.id == stored.id for i, r in enumerate(records) if i != index) or any(
                    r.id == stored.id for r in contents.imported):
                raise StoreError(f"a master with id {stored.id!r} is already recorded in {self.path}")
            old = self._unseal(contents, records[index])  # a secret kept under a new id is encrypted anew
            records[index] = dataclasses.replace(stored, **{
                name: getattr(old, name) for name in _store_format.SECRET_FIELDS if getattr(stored, name) == SEALED
            })

        self._modify(change)
        return dataclasses.replace(stored)

    def remove(self, master_id: str) -> MasterRecord:
        """Forget a master.

        Args:
            master_id: the master id.

        Returns:
            The record that was removed.

        Raises:
            InvalidArgument: ``master_id`` is not text, or is empty or blank.
            MasterNotFound: no master with that id (the known ids are listed).
            StoreError: the store cannot be read or written.
        """
        removed: builtins.list[MasterRecord] = []
        self._modify(lambda records, contents: removed.append(records.pop(self._index(records, master_id, contents))))
        return removed[0]

    # --- internals -------------------------------------------------------------------------

    def _index(self, records: builtins.list[MasterRecord], master_id: str,
               writing: _store_format.Contents | None = None) -> int:
        """The index of ``master_id`` in ``records``; ``writing``: the contents being changed
        (an imported master is then refused: micado-client never changes the official client's entries)."""
        _check_id(master_id)
        for index, record in enumerate(records):
            if record.id == master_id:
                return index
        if writing is not None and any(r.id == master_id for r in writing.imported):
            raise InvalidArgument(
                f"master {master_id!r} was recorded by the official micado-client (under "
                f"'{_store_format.OFFICIAL_KEY}:' in {self.path}); micado-client reads that entry but never "
                "changes or removes it: use the official client for that master"
            )
        if writing is not None:
            records = records + writing.imported
        known = ", ".join(r.id for r in records) if records else "none, the store is empty"
        raise MasterNotFound(f"no master with id {master_id!r} in {self.path}; known ids: {known}")

    def _modify(
        self, change: Callable[[builtins.list[MasterRecord], _store_format.Contents], None]
    ) -> None:
        """Read, change and write the store, all under the exclusive lock.

        Records left as they were keep their secrets' ciphertexts: nothing is decrypted
        to write the store back.
        """
        with self._locked():
            self._remove_stale_temp_files()
            contents = self._read()
            change(contents.records, contents)
            key = contents.key or self._key() or self._create_key_file()
            if contents.legacy:
                logger.info("rewriting %s (written by micado-client 0.9) in the new form", self.path)
            try:
                data = _store_format.dump(contents.records, key, contents)
            except _store_format.Damaged as exc:
                raise InvalidArgument(f"cannot store the record: {exc}") from None
            self._write(data)

    def _unseal(self, contents: _store_format.Contents, record: MasterRecord) -> MasterRecord:
        try:
            return contents.unseal(record)
        except _store_format.Damaged as exc:
            raise self._damaged(str(exc)) from None

    def _read(self) -> _store_format.Contents:
        """Return what the file holds (nothing if there is no file)."""
        try:
            text = read_limited(self.path, MAX_FILE_BYTES, follow_symlinks=False)
        except FileNotFoundError:
            return _store_format.Contents()
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreError(f"cannot read the master store {self.path}: {_reason(exc)}") from None
        except Refused as exc:
            raise _symlink_refused(self.path, "the master store") or self._damaged(exc.problem) from None
        try:
            contents = _store_format.parse(text, self._key)
        except _store_format.KeyProblem as exc:
            source = f"the key file {self.key_path}"
            if os.environ.get(ENV_KEY):
                source = f"the variable {ENV_KEY}"
            raise StoreError(
                f"cannot decrypt the passwords in the master store {self.path}: {exc}. The key "
                f"comes from {source}; restore the key file made with this store, or set "
                f"{ENV_KEY} to its key (64 hex digits or base64)"
            ) from None
        except _store_format.Damaged as exc:
            raise self._damaged(str(exc)) from None
        if contents.legacy and contents.records and str(self.path) not in _LEGACY_WARNED:
            _LEGACY_WARNED.add(str(self.path))  # once per file and process, not on every read
            logger.warning(
                "%s was written by micado-client 0.9 and holds MiCADO passwords in plaintext; "
                "the next change to the store rewrites it with the passwords encrypted", self.path,
            )
        return contents

    def _damaged(self, problem: str) -> StoreError:
        return StoreError(
            f"the master store {self.path} is damaged: {problem}. It was left untouched and "
            "micado-client will not write to it: fix it, or move it away (e.g. "
            f"mv {self.path} {self.path}.damaged) to start an empty store"
        )

    def _key(self) -> bytes | None:
        """Return the store key (the environment first, then the key file), or ``None`` if neither."""
        value = os.environ.get(ENV_KEY)
        if value:
            return crypto.decode_key(value, f"the environment variable {ENV_KEY}")
        return self._read_key_file()

    def _read_key_file(self) -> bytes | None:
        """The key in the key file, ``None`` if there is no such file."""
        text = _read_private_file(self.key_path, "the key file", "does not hold a valid store key")
        if text is None:
            return None
        with contextlib.suppress(OSError):
            if self.key_path.stat().st_mode & 0o077:
                logger.warning("the store key %s can be read by others; run: chmod 600 %s",
                               self.key_path, self.key_path)
        return crypto.decode_key(text, f"the key file {self.key_path}")

    def _create_key_file(self) -> bytes:
        # link() fails if the name exists, so the complete key appears at once or not at all.
        key = crypto.new_key()
        try:
            fd, temp = tempfile.mkstemp(
                prefix=f".{self.key_path.name}.", suffix=".tmp", dir=self.key_path.parent
            )
        except OSError as exc:
            raise StoreError(f"cannot create the key file {self.key_path}: {_reason(exc)}") from None
        try:
            with os.fdopen(fd, "w", encoding="ascii") as file:
                file.write(crypto.encode_key(key) + "\n")
                file.flush()
                os.fsync(file.fileno())
            os.link(temp, self.key_path)
        except FileExistsError:  # made meanwhile by a process that does not share our lock
            existing = self._read_key_file()  # (or a symbolic link, dangling or not: refused)
            if existing is None:
                raise StoreError(f"the key file {self.key_path} appeared and vanished; try again") from None
            return existing
        except OSError as exc:
            raise StoreError(f"cannot create the key file {self.key_path}: {_reason(exc)}") from None
        finally:
            os.unlink(temp)
        _fsync_dir(self.key_path.parent)
        logger.info("created the store key %s", self.key_path)
        return key

    def _write(self, data: bytes) -> None:
        try:
            write_private(self.path, data)
        except OSError as exc:
            raise StoreError(f"cannot write the master store {self.path}: {_reason(exc)}") from None
        _fsync_dir(self.path.parent)

    def _remove_stale_temp_files(self) -> None:
        # Only the lock holder writes temporary files: any left now belong to a dead writer.
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            logger.debug("removing %s, left by an interrupted write", stale)
            stale.unlink(missing_ok=True)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if self.path.parent == paths.micado_dir():
            paths.ensure_dir()
        else:
            try:
                self.path.parent.mkdir(mode=paths.DIR_MODE, parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the folder of the master store {self.path}: {_reason(exc)}") from None
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, paths.FILE_MODE)
        except OSError as exc:
            raise StoreError(f"cannot open the lock file {self.lock_path}: {_reason(exc)}") from None

        def take() -> bool | None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return None

        try:
            try:
                wait_until(
                    take, what=f"the lock {self.lock_path}", timeout=self.lock_timeout,
                    stage="store", interval=0.002, max_interval=0.05,
                )
            except MicadoTimeout as exc:
                raise StoreError(
                    f"another process has held the lock {self.lock_path} for over "
                    f"{self.lock_timeout:g} s; is a micado-client program stuck?"
                ) from exc
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock


def _check_id(master_id: object) -> None:
    # The one check of a master id given to the store: "" or "  " names no master (as a
    # beginning, "" would name every one), whichever command or call it came from.
    if not isinstance(master_id, str) or not master_id.strip():
        raise InvalidArgument(f"master_id must be a stored master's id, not {master_id!r} "
                              "(an empty or blank id names no master)")


def _refuse_sealed(record: MasterRecord, where: str) -> None:
    sealed = [name for name in _store_format.SECRET_FIELDS if getattr(record, name) == SEALED]
    if sealed:
        raise InvalidArgument(
            f"MasterRecord.{sealed[0]} is sealed (the record came from MasterStore.list()); {where} needs "
            "the secret itself: take the record from MasterStore.get(id)"
        )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _symlink_refused(path: Path, what: str) -> StoreError | None:
    """The error for a store or key file that is a symbolic link; ``None`` if it is not one."""
    if not path.is_symlink():
        return None
    # Followed, the link would be read, then replaced by a file on the next write (a rename
    # replaces the link itself); and writers reaching the file through other links would
    # not share a lock.
    return StoreError(
        f"{what} {path} is a symbolic link, which micado-client does not follow: put the "
        f"file itself there, or set {paths.ENV_DIR} to the folder that holds it"
    )


def _reason(exc: BaseException) -> str:
    return paths.os_reason(exc) if isinstance(exc, OSError) else type(exc).__name__


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; some filesystems refuse fsync on a directory.
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError:
        logger.debug("fsync of directory %s not supported", directory)
    finally:
        os.close(fd)


def _read_private_file(path: Path, what: str, damaged: str) -> str | None:
    """The text of a small private file beside the store (key, identity); ``None`` if it is absent.

    Raises:
        StoreError: it is a symbolic link, cannot be read, or is not a small text file
            (``damaged`` says how that is put for this file).
    """
    try:
        return read_limited(path, _MAX_KEY_FILE_BYTES, follow_symlinks=False)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"cannot read {what} {path}: {_reason(exc)}") from None
    except Refused as exc:
        raise _symlink_refused(path, what) or StoreError(f"{what} {path} {damaged}: {exc.problem}") from None
