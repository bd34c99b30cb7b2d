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
* **Secrets** (the MiCADO web password) are encrypted with AES-256-GCM, a fresh
  random nonce per value, the record id and field name bound in as associated data
  (a value cannot be moved to another record). The key is 32 random bytes, taken from
  the environment variable ``MICADO_SECRET_KEY`` when set (64 hex digits, or base64),
  otherwise from ``<MiCADO dir>/secret.key`` (base64, mode 0600), which the first
  write creates. ``key_id`` (a hash of the key) tells a wrong key from a damaged file.
* **Writes** happen under an exclusive ``fcntl.flock`` on ``data.yml.lock``: read,
  change and write all inside the lock, so parallel programs lose nothing. The new
  content goes to a temporary file in the same directory, is fsync'ed and renamed over
  ``data.yml`` (then the directory is fsync'ed): a writer that dies at any moment
  leaves either the old or the new file, never a partial one. Files are 0600, the
  directory 0700. Readers take no lock: a rename is atomic.
* **A damaged file** (not YAML/JSON, wrong shape, undecryptable value) raises
  :class:`~micado.exceptions.StoreError` naming the file and the problem, on reads
  *and* writes: micado-client never overwrites it. Fix it, or move it away to start
  an empty store.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import fcntl
import hashlib
import json
import logging
import math
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from micado.config import paths
from micado.config._yaml import YamlSyntaxError, safe_load
from micado.exceptions import InvalidArgument, MasterNotFound, MicadoTimeout, StoreError
from micado.progress import wait_until

__all__ = ["MasterRecord", "MasterStore", "ENV_KEY", "STORE_FORMAT"]

logger = logging.getLogger(__name__)

#: Environment variable with the store key: 64 hex digits, or the base64 of 32 bytes.
ENV_KEY = "MICADO_SECRET_KEY"
#: The version of the on-disk format this module writes.
STORE_FORMAT = 2

_FORMAT_KEY = "micado_client_store"
_CIPHER_PREFIX = "aesgcm:"
_NONCE_BYTES = 12
_TAG_BYTES = 16
_KEY_BYTES = 32
_SECRET_FIELDS = ("micado_password",)


@dataclass
class MasterRecord:
    """Everything needed to reach (and later destroy) one MiCADO master.

    Attributes:
        id: the master id (the cloud server id).
        ip: the master's public address.
        endpoint: the TOSCA Submitter base URL, e.g. ``https://<ip>/toscasubmitter``.
        api_version: the submitter API version, e.g. ``v2.0``.
        cert_path: the master's stored TLS certificate, if any.
        micado_user: the MiCADO web user.
        micado_password: the MiCADO web password (encrypted at rest, hidden in ``repr``).
        launcher: the launcher that made the master (``openstack``).
        auth_url: the cloud's Keystone URL.
        region_name: the cloud region.
        project_id: the cloud project.
        user_domain_name: the cloud user's domain.
        name: the server name, e.g. ``MiCADO-Master-<hex>``.
        created: creation time, ISO-8601 UTC; :meth:`MasterStore.add` fills it in if ``None``.
        extra: launcher and installer details (``floating_ip_id``, ``ssh_user``,
            ``ssh_port``, ``api_port``, ``micado_version``...), plain JSON values only.
    """

    id: str
    ip: str
    endpoint: str
    api_version: str
    cert_path: str | None
    micado_user: str
    micado_password: str = field(repr=False)
    launcher: str = "openstack"
    auth_url: str | None = None
    region_name: str | None = None
    project_id: str | None = None
    user_domain_name: str | None = None
    name: str | None = None
    created: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_REQUIRED_TEXT = ("id", "ip", "endpoint", "api_version", "micado_user", "micado_password", "launcher")
_OPTIONAL_TEXT = ("cert_path", "auth_url", "region_name", "project_id", "user_domain_name", "name", "created")
_FIELDS = tuple(f.name for f in dataclasses.fields(MasterRecord))


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
        default = path is None
        self.lock_path = paths.store_lock_file() if default else self.path.with_name(self.path.name + ".lock")
        self.key_path = paths.secret_key_file() if default else self.path.with_name(paths.secret_key_file().name)
        self.lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"MasterStore({str(self.path)!r})"

    # --- reading ---------------------------------------------------------------------------

    def list(self) -> list[MasterRecord]:
        """Return every stored master, oldest first.

        Raises:
            StoreError: the file is damaged, or its key is missing or wrong.
        """
        return self._read()[0]

    def get(self, master_id: str) -> MasterRecord:
        """Return the record of one master.

        Args:
            master_id: the master id.

        Raises:
            MasterNotFound: no master with that id (the known ids are listed).
            StoreError: the file is damaged, or its key is missing or wrong.
        """
        records = self.list()
        return records[self._index(records, master_id)]

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
        _validate(record)
        if record.created is None:
            record = dataclasses.replace(record, created=_now())
        stored = dataclasses.replace(record, extra=json.loads(json.dumps(record.extra)))

        def change(records: list[MasterRecord]) -> None:
            if any(r.id == stored.id for r in records):
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
            record: the new record; a ``created`` of ``None`` keeps the old value.

        Returns:
            The record as stored (a copy).

        Raises:
            InvalidArgument: a field has the wrong type, or ``extra`` is not plain JSON.
            MasterNotFound: no master with that id.
            StoreError: the store cannot be read or written.
        """
        _validate(record)
        result: list[MasterRecord] = []

        def change(records: list[MasterRecord]) -> None:
            index = self._index(records, record.id)
            created = record.created if record.created is not None else records[index].created
            records[index] = dataclasses.replace(
                record, created=created, extra=json.loads(json.dumps(record.extra))
            )
            result.append(records[index])

        self._modify(change)
        return dataclasses.replace(result[0])

    def remove(self, master_id: str) -> MasterRecord:
        """Forget a master.

        Args:
            master_id: the master id.

        Returns:
            The record that was removed.

        Raises:
            MasterNotFound: no master with that id (the known ids are listed).
            StoreError: the store cannot be read or written.
        """
        removed: list[MasterRecord] = []
        self._modify(lambda records: removed.append(records.pop(self._index(records, master_id))))
        return removed[0]

    # --- internals -------------------------------------------------------------------------

    def _index(self, records: list[MasterRecord], master_id: str) -> int:
        for index, record in enumerate(records):
            if record.id == master_id:
                return index
        known = ", ".join(r.id for r in records) if records else "none, the store is empty"
        raise MasterNotFound(f"no master with id {master_id!r} in {self.path}; known ids: {known}")

    def _modify(self, change: Callable[[list[MasterRecord]], None]) -> None:
        """Read, change and write the store, all under the exclusive lock."""
        with self._locked():
            self._remove_stale_temp_files()
            records, legacy = self._read()
            change(records)
            key = self._key(create=True)
            if legacy:
                logger.info("rewriting %s (written by micado-client 0.9) in the new form", self.path)
            self._write(_dump(records, key))

    def _read(self) -> tuple[list[MasterRecord], bool]:
        """Return the records and whether the file is in the 0.9 format."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return [], False
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreError(f"cannot read the master store {self.path}: {_reason(exc)}") from None
        try:
            return _parse(text, self._key)
        except _KeyProblem as exc:
            source = f"the variable {ENV_KEY}" if os.environ.get(ENV_KEY) else f"the key file {self.key_path}"
            raise StoreError(
                f"cannot decrypt the passwords in the master store {self.path}: {exc}. The key "
                f"comes from {source}; restore the key file made with this store, or set "
                f"{ENV_KEY} to its key (64 hex digits or base64)"
            ) from None
        except _Damaged as exc:
            raise StoreError(
                f"the master store {self.path} is damaged: {exc}. It was left untouched and "
                "micado-client will not write to it: fix it, or move it away (e.g. "
                f"mv {self.path} {self.path}.damaged) to start an empty store"
            ) from None

    def _key(self, create: bool = False) -> bytes | None:
        """Return the store key (environment first, then the key file), creating the file if asked."""
        value = os.environ.get(ENV_KEY)
        if value:
            return _decode_key(value, f"the environment variable {ENV_KEY}")
        try:
            return _decode_key(self.key_path.read_text(encoding="ascii"), f"the key file {self.key_path}")
        except FileNotFoundError:
            if not create:
                return None
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreError(f"cannot read the key file {self.key_path}: {_reason(exc)}") from None
        return self._create_key_file()

    def _create_key_file(self) -> bytes:
        # link() fails if the name exists, so the complete key appears at once or not at all.
        key = secrets.token_bytes(_KEY_BYTES)
        try:
            fd, temp = tempfile.mkstemp(
                prefix=f".{self.key_path.name}.", suffix=".tmp", dir=self.key_path.parent
            )
        except OSError as exc:
            raise StoreError(f"cannot create the key file {self.key_path}: {_reason(exc)}") from None
        try:
            with os.fdopen(fd, "w", encoding="ascii") as file:
                file.write(base64.b64encode(key).decode("ascii") + "\n")
                file.flush()
                os.fsync(file.fileno())
            os.link(temp, self.key_path)
        except FileExistsError:
            return _decode_key(self.key_path.read_text(encoding="ascii"), f"the key file {self.key_path}")
        except OSError as exc:
            raise StoreError(f"cannot create the key file {self.key_path}: {_reason(exc)}") from None
        finally:
            os.unlink(temp)
        _fsync_dir(self.key_path.parent)
        logger.info("created the store key %s", self.key_path)
        return key

    def _write(self, data: bytes) -> None:
        fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, self.path)
        except BaseException as exc:
            try:
                os.unlink(temp)
            except FileNotFoundError:
                pass
            if isinstance(exc, OSError):
                raise StoreError(f"cannot write the master store {self.path}: {_reason(exc)}") from None
            raise
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
            self.path.parent.mkdir(mode=paths.DIR_MODE, parents=True, exist_ok=True)
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


# --- file format -------------------------------------------------------------------------------


class _Damaged(Exception):
    """The store file cannot be understood (the message says why and where)."""


class _KeyProblem(Exception):
    """The store is fine but the key to its passwords is missing or another one."""


def _parse(text: str, get_key: Callable[[], bytes | None]) -> tuple[list[MasterRecord], bool]:
    if not text.strip():
        return [], False
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        try:
            document = safe_load(text)  # a 0.9 file, or one edited by hand
        except YamlSyntaxError as exc:
            raise _Damaged(f"not YAML ({exc})") from None
    if isinstance(document, dict) and _FORMAT_KEY in document:
        return _parse_current(document, get_key), False
    if isinstance(document, dict) and set(document) == {"masters"}:
        return _parse_legacy(document["masters"]), True
    raise _Damaged(f"expected a mapping with '{_FORMAT_KEY}' and 'masters' (or the 0.9 form 'masters: [...]')")


def _parse_current(document: dict[str, Any], get_key: Callable[[], bytes | None]) -> list[MasterRecord]:
    version = document[_FORMAT_KEY]
    if not isinstance(version, int) or version < 1:
        raise _Damaged(f"'{_FORMAT_KEY}' must be a format number, not {version!r}")
    if version > STORE_FORMAT:
        raise _Damaged(
            f"it was written by a newer micado-client (format {version}; this one reads up to "
            f"{STORE_FORMAT}): upgrade micado-client"
        )
    masters = document.get("masters")
    if not isinstance(masters, list):
        raise _Damaged("'masters' must be a list")
    key: bytes | None = None
    if masters:
        if not isinstance(document.get("key_id"), str):
            raise _Damaged("'key_id' (the fingerprint of the key of its passwords) is missing")
        key = get_key()
        if key is None:
            raise _KeyProblem("the key file is missing")
        if document.get("key_id") != _key_id(key):
            raise _KeyProblem(
                f"it was encrypted with another key (key id {document.get('key_id')}) than the "
                f"one in use (key id {_key_id(key)})"
            )
    records = []
    for index, entry in enumerate(masters):
        where = f"masters[{index}]"
        if not isinstance(entry, dict):
            raise _Damaged(f"{where} must be a mapping")
        unknown = sorted(set(entry) - set(_FIELDS))
        if unknown:
            raise _Damaged(f"{where} has unknown field(s) {', '.join(map(str, unknown))}")
        values = dict(entry)
        for name in _SECRET_FIELDS:
            if name in values:
                values[name] = _decrypt(key, values[name], _aad(values.get("id"), name), f"{where}.{name}")
        records.append(_record(values, where))
    _check_unique(records)
    return records


def _parse_legacy(masters: Any) -> list[MasterRecord]:
    if not isinstance(masters, list):
        raise _Damaged("'masters' must be a list")
    records = []
    for index, entry in enumerate(masters):
        where = f"masters[{index}]"
        if not (isinstance(entry, dict) and len(entry) == 1 and isinstance(next(iter(entry.values())), dict)):
            raise _Damaged(f"{where} must be a mapping of one master id to its fields (0.9 form)")
        ((master_id, fields),) = entry.items()
        values = {name: _legacy_text(value) for name, value in fields.items() if name in _FIELDS}
        values.update(id=_legacy_text(master_id), launcher="openstack")
        values.setdefault("api_version", "v2.0")
        for name in ("micado_user", "micado_password", "cert_path"):
            values.setdefault(name, None)
        records.append(_record(values, f"{where}.{master_id}"))
    _check_unique(records)
    return records


def _legacy_text(value: Any) -> str | None:
    # 0.9 wrote '' for "no region" and whatever type the caller passed.
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _record(values: dict[str, Any], where: str) -> MasterRecord:
    for name in _REQUIRED_TEXT:
        if not isinstance(values.get(name), str):
            problem = "is missing" if values.get(name) is None else "must be text"
            raise _Damaged(f"{where}.{name} {problem}")
    for name in _OPTIONAL_TEXT:
        if not isinstance(values.get(name), (str, type(None))):
            raise _Damaged(f"{where}.{name} must be text or null")
    if not isinstance(values.setdefault("extra", {}), dict):
        raise _Damaged(f"{where}.extra must be a mapping")
    return MasterRecord(**values)


def _check_unique(records: list[MasterRecord]) -> None:
    seen: set[str] = set()
    for record in records:
        if record.id in seen:
            raise _Damaged(f"the master id {record.id!r} appears twice")
        seen.add(record.id)


def _dump(records: list[MasterRecord], key: bytes) -> bytes:
    masters = []
    for record in records:
        entry = dataclasses.asdict(record)
        for name in _SECRET_FIELDS:
            entry[name] = _encrypt(key, entry[name], _aad(record.id, name))
        masters.append(entry)
    document = {_FORMAT_KEY: STORE_FORMAT, "key_id": _key_id(key), "masters": masters}
    return (json.dumps(document, indent=2, ensure_ascii=True) + "\n").encode("ascii")


# --- encryption ----------------------------------------------------------------------------------


def _decode_key(text: str, source: str) -> bytes:
    value = text.strip()
    try:
        if len(value) == 2 * _KEY_BYTES and all(c in "0123456789abcdefABCDEF" for c in value):
            key = bytes.fromhex(value)
        else:
            key = base64.b64decode(value.replace("-", "+").replace("_", "/"), validate=True)
    except (ValueError, binascii.Error):
        key = b""
    if len(key) != _KEY_BYTES:
        raise StoreError(
            f"{source} does not hold a valid store key: it must be {_KEY_BYTES} bytes written as "
            f"{2 * _KEY_BYTES} hex digits or in base64 (44 characters)"
        )
    return key


def _key_id(key: bytes) -> str:
    """A short public fingerprint of the key, to tell a wrong key from a damaged file."""
    return hashlib.sha256(b"micado-client store key\0" + key).hexdigest()[:12]


def _aad(master_id: Any, name: str) -> bytes:
    return f"micado-client/{master_id}/{name}".encode()


def _encrypt(key: bytes, plaintext: str, aad: bytes) -> str:
    from Crypto.Cipher import AES

    nonce = secrets.token_bytes(_NONCE_BYTES)
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=_TAG_BYTES)
    cipher.update(aad)
    ciphertext, tag = cipher.encrypt_and_digest(plaintext.encode("utf-8"))
    return _CIPHER_PREFIX + base64.b64encode(nonce + tag + ciphertext).decode("ascii")


def _decrypt(key: bytes | None, value: Any, aad: bytes, where: str) -> str:
    from Crypto.Cipher import AES

    if not (isinstance(value, str) and value.startswith(_CIPHER_PREFIX)) or key is None:
        raise _Damaged(f"{where} is not an encrypted value")
    try:
        blob = base64.b64decode(value[len(_CIPHER_PREFIX):], validate=True)
    except (ValueError, binascii.Error):
        raise _Damaged(f"{where} is not valid base64") from None
    nonce, tag, ciphertext = blob[:_NONCE_BYTES], blob[_NONCE_BYTES:_NONCE_BYTES + _TAG_BYTES], blob[_NONCE_BYTES + _TAG_BYTES:]
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=_TAG_BYTES)
    cipher.update(aad)
    try:
        return cipher.decrypt_and_verify(ciphertext, tag).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        # The key id matched, so the value itself was changed (or moved from another record).
        raise _Damaged(f"{where} fails its integrity check (changed by hand, or copied from another record)") from None


# --- helpers ---------------------------------------------------------------------------------------


def _validate(record: MasterRecord) -> None:
    if not isinstance(record, MasterRecord):
        raise InvalidArgument(f"expected a MasterRecord, not {type(record).__name__}")
    for name in _REQUIRED_TEXT:
        value = getattr(record, name)
        if not isinstance(value, str) or (name == "id" and not value.strip()):
            raise InvalidArgument(f"MasterRecord.{name} must be {'non-empty ' if name == 'id' else ''}text")
    for name in _OPTIONAL_TEXT:
        if not isinstance(getattr(record, name), (str, type(None))):
            raise InvalidArgument(f"MasterRecord.{name} must be text or None")
    if not isinstance(record.extra, dict):
        raise InvalidArgument("MasterRecord.extra must be a dict of plain JSON values")
    _check_plain(record.extra, "MasterRecord.extra")


def _check_plain(value: Any, where: str) -> None:
    """Accept only what survives a JSON round trip unchanged."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidArgument(f"{where} has a key that is not text: {key!r}")
            _check_plain(item, f"{where}[{key!r}]")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_plain(item, f"{where}[{index}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise InvalidArgument(f"{where} is not a finite number")
    elif not isinstance(value, (str, int, float, bool, type(None))):
        raise InvalidArgument(
            f"{where} is a {type(value).__name__}; use plain JSON values (text, numbers, "
            "booleans, null, lists, dicts)"
        )


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; some filesystems refuse fsync on a directory.
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError:
        logger.debug("fsync of directory %s not supported", directory)
    finally:
        os.close(fd)
