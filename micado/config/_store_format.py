"""The on-disk form of the master store: parse ``data.yml`` (this form or 0.9's), dump it.

Current form (JSON, which is also YAML 1.2)::

    {"micado_client_store": 2, "key_id": "<12 hex>", "masters": [{"id": ..., ...}]}

micado-client 0.9 form (YAML, password in plaintext)::

    masters:
      - <id>: {api_version, cert_path, endpoint, ip, micado_user, micado_password,
               auth_url, region_name, project_id, user_domain_name}

The official micado-client 0.12 form (YAML, password in plaintext), read as *imported*
masters (state :data:`~micado.config.record.IMPORTED`) and never changed::

    micados:
      - <id>: {ip, endpoint, auth_url, region_name, project_id, user_domain_name,
               api_version, micado_user, micado_password, cert_path}

A file may hold both (ours and the official client's, ``micados:``), and keys of other
programs. Such a file is written in YAML: the top-level entries that are not ours first,
exactly as they were in the file (byte for byte), then ours, each value in JSON (which
is YAML too).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from micado.config import crypto
from micado.config.bounded_yaml import MAX_DEPTH, MAX_YAML_BYTES, Refused, YamlSyntaxError, depth_of, safe_load
from micado.config.record import FIELDS, IMPORTED, OPTIONAL_TEXT, REQUIRED_TEXT, SEALED, MasterRecord
from micado.launcher.registry import DEFAULT_LAUNCHER

__all__ = ["STORE_FORMAT", "SECRET_FIELDS", "OFFICIAL_KEY", "Contents", "Damaged", "KeyProblem", "parse", "dump"]

#: The version of the on-disk form this module writes.
STORE_FORMAT = 2

_FORMAT_KEY = "micado_client_store"
#: The top-level key of the official micado-client 0.12's masters.
OFFICIAL_KEY = "micados"
# The top-level keys of this library's own form.
_OUR_KEYS = (_FORMAT_KEY, "key_id", "masters")
#: The fields kept encrypted on disk.
SECRET_FIELDS = ("micado_password", "grafana_password", "secret_settings")
# What micado-client 0.9 wrote for each master (under its id), all of it kept; the
# official 0.12 writes the same fields (and, with its CloudBroker launcher, others).
_LEGACY_FIELDS = (
    "api_version", "cert_path", "endpoint", "ip", "micado_user", "micado_password",
    "auth_url", "region_name", "project_id", "user_domain_name",
)


class Damaged(Exception):
    """The store file cannot be understood (the message says why and where)."""


class KeyProblem(Exception):
    """The store is fine but the key to its passwords is missing or another one."""


@dataclasses.dataclass
class Contents:
    """What a store file holds.

    Attributes:
        records: the records, oldest first; their secrets are :data:`SEALED`.
        legacy: the file is in the 0.9 form (secrets in plaintext).
        key: the key the secrets are encrypted with (``None`` if the file has none).
        sealed: (master id, field) -> (the value as in the file, where it is in the
            file): encrypted, or plaintext in the 0.9 form and in ``plaintext``.
        imported: the official micado-client's masters (``micados:``), read only;
            their secrets are :data:`SEALED` too.
        plaintext: the (master id, field) of ``sealed`` that are plaintext (the
            official client's).
        foreign: the top-level keys that are not this library's, in file order
            (``micados`` and any other program's), with their values.
        text: the file's content (its foreign entries are written back from it).
    """

    records: list[MasterRecord] = dataclasses.field(default_factory=list)
    legacy: bool = False
    key: bytes | None = None
    sealed: dict[tuple[str, str], tuple[str, str]] = dataclasses.field(default_factory=dict)
    imported: list[MasterRecord] = dataclasses.field(default_factory=list)
    plaintext: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    foreign: list[tuple[Any, Any]] = dataclasses.field(default_factory=list)
    text: str = ""

    def unseal(self, record: MasterRecord) -> MasterRecord:
        """Return a copy of ``record`` with its :data:`SEALED` secrets decrypted.

        Raises:
            Damaged: a value fails its integrity check (changed, or moved from
                another record), or the record's secret is not in the file.
        """
        values: dict[str, Any] = {}
        for name in SECRET_FIELDS:
            if getattr(record, name) != SEALED:
                continue
            found = self.sealed.get((record.id, name))
            if found is None:
                raise Damaged(f"the master {record.id!r} has no stored {name} to keep")
            value, where = found
            if self.key is None or (record.id, name) in self.plaintext:  # 0.9 and 0.12: plaintext
                values[name] = value
                continue
            try:
                values[name] = crypto.decrypt(self.key, value, _aad(record.id, name))
            except crypto.CiphertextError as exc:
                raise Damaged(f"{where}.{name} {exc}") from None
        return dataclasses.replace(record, **values)


def parse(text: str, get_key: Callable[[], bytes | None]) -> Contents:
    """Return what a store file holds, secrets left encrypted (decrypted one record at a time).

    Args:
        text: the file's content.
        get_key: returns the store key, or ``None`` when there is none; called only
            when the file holds encrypted values.

    Raises:
        Damaged: the content is not a store (the message says what and where).
        KeyProblem: there is no key, or it is not the one the file was written with.
        StoreError: the key itself is malformed (from ``get_key``).
    """
    if not text.strip():
        return Contents()
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        try:
            document = safe_load(text)  # a 0.9 file, or one edited by hand
        except Refused as exc:
            where = f" (line {exc.line}, column {exc.column})" if exc.line is not None else ""
            raise Damaged(f"{exc.problem}{where}") from None
        except YamlSyntaxError as exc:
            raise Damaged(f"not YAML ({exc})") from None
    except RecursionError:  # json nests by recursion, and stops cleanly at the interpreter's limit
        raise Damaged(f"it is nested more than {MAX_DEPTH} levels deep") from None
    except ValueError:  # not a syntax error: int() refuses a number of thousands of digits
        raise Damaged("a number has too many digits to be read") from None
    if depth_of(document) > MAX_DEPTH:
        raise Damaged(f"it is nested more than {MAX_DEPTH} levels deep")
    if not isinstance(document, dict) or not {_FORMAT_KEY, "masters", OFFICIAL_KEY} & set(document):
        raise Damaged(
            f"expected a mapping with '{_FORMAT_KEY}' and 'masters' (or the 0.9 form 'masters: [...]', "
            f"or the official micado-client 0.12's '{OFFICIAL_KEY}: [...]')"
        )
    ours: tuple[str, ...] = ()
    if _FORMAT_KEY in document:
        contents, ours = _parse_current(document, get_key), _OUR_KEYS
    elif "masters" in document:
        contents, ours = Contents(_parse_legacy(document["masters"]), legacy=True), ("masters",)
        for index, record in enumerate(contents.records):
            _seal(contents, record, f"masters[{index}]")
    else:
        contents = Contents()
    if OFFICIAL_KEY in document:
        contents.imported = _parse_official(document[OFFICIAL_KEY], contents)
        _check_unique(contents.records + contents.imported)
    contents.foreign = [(name, value) for name, value in document.items() if name not in ours]
    contents.text = text
    return contents


def _parse_current(document: dict[str, Any], get_key: Callable[[], bytes | None]) -> Contents:
    version = document[_FORMAT_KEY]
    if not isinstance(version, int) or version < 1:
        raise Damaged(f"'{_FORMAT_KEY}' must be a format number, not {version!r}")
    if version > STORE_FORMAT:
        raise Damaged(
            f"it was written by a newer micado-client (format {version}; this one reads up to "
            f"{STORE_FORMAT}): upgrade micado-client"
        )
    masters = document.get("masters")
    if not isinstance(masters, list):
        raise Damaged("'masters' must be a list")
    key: bytes | None = None
    if masters:
        if not isinstance(document.get("key_id"), str):
            raise Damaged("'key_id' (the fingerprint of the key of its passwords) is missing")
        key = get_key()
        if key is None:
            raise KeyProblem("the key file is missing")
        if document["key_id"] != crypto.key_id(key):
            raise KeyProblem(
                f"it was encrypted with another key (key id {document['key_id']}) than the "
                f"one in use (key id {crypto.key_id(key)})"
            )
    contents = Contents(key=key)
    for index, entry in enumerate(masters):
        where = f"masters[{index}]"
        if not isinstance(entry, dict):
            raise Damaged(f"{where} must be a mapping")
        unknown = sorted(str(name) for name in set(entry) - set(FIELDS))
        if unknown:
            raise Damaged(f"{where} has unknown field(s) {', '.join(unknown)}")
        record = _record(dict(entry), where)
        for name in SECRET_FIELDS:
            if getattr(record, name) is not None and not crypto.looks_encrypted(getattr(record, name)):
                raise Damaged(f"{where}.{name} is not an encrypted value")
        _seal(contents, record, where)
        contents.records.append(record)
    _check_unique(contents.records)
    return contents


def _seal(contents: Contents, record: MasterRecord, where: str) -> None:
    """Move ``record``'s secrets, as they are in the file, to ``contents.sealed``."""
    for name in SECRET_FIELDS:
        value = getattr(record, name)
        if value is not None:
            contents.sealed[(record.id, name)] = (value, where)
            setattr(record, name, SEALED)


def _one_master(entry: Any, where: str, form: str) -> tuple[Any, dict[str, Any]]:
    """``(id, fields)`` of an entry written as ``{<master id>: {fields}}`` (the 0.9 and official 0.12 forms)."""
    fields = next(iter(entry.values())) if isinstance(entry, dict) and len(entry) == 1 else None
    if not isinstance(fields, dict):
        raise Damaged(f"{where} must be a mapping of one master id to its fields ({form})")
    return next(iter(entry)), fields


def _parse_legacy(masters: Any) -> list[MasterRecord]:
    if not isinstance(masters, list):
        raise Damaged("'masters' must be a list")
    records = []
    for index, entry in enumerate(masters):
        where = f"masters[{index}]"
        master_id, fields = _one_master(entry, where, "0.9 form")
        values = {name: _legacy_text(fields.get(name)) for name in _LEGACY_FIELDS}
        values.update(id=_legacy_text(master_id), launcher=DEFAULT_LAUNCHER)  # 0.9 had only OpenStack
        values["api_version"] = values["api_version"] or "v2.0"
        records.append(_record(values, f"{where}.{master_id}"))
    _check_unique(records)
    return records


def _parse_official(masters: Any, contents: Contents) -> list[MasterRecord]:
    """The official micado-client 0.12's entries, as :data:`IMPORTED` records (plaintext secrets sealed)."""
    if masters is None:  # "micados:" with nothing under it
        return []
    if not isinstance(masters, list):
        raise Damaged(f"'{OFFICIAL_KEY}' (the official micado-client's masters) must be a list")
    records = []
    for index, entry in enumerate(masters):
        where = f"{OFFICIAL_KEY}[{index}]"
        master_id, fields = _one_master(entry, where, "the official client's form")
        if not isinstance(master_id, (str, int)) or isinstance(master_id, bool):
            raise Damaged(f"{where} has a master id that is not text")
        master_id = str(master_id)
        values: dict[str, Any] = {
            name: _official_text(fields.get(name), f"{where}.{master_id}.{name}") for name in _LEGACY_FIELDS
        }
        if values["ip"] is None:
            raise Damaged(f"{where}.{master_id}.ip is missing")
        values.update(
            id=master_id, state=IMPORTED,
            # The official client had OpenStack and CloudBroker; only its CloudBroker entries have deployment_id.
            launcher="cloudbroker" if "deployment_id" in fields else DEFAULT_LAUNCHER,
            endpoint=values["endpoint"] or f"https://{values['ip']}/toscasubmitter",
            api_version=values["api_version"] or "v2.0",
            micado_user=values["micado_user"] or "",  # absent until the official deploy finished
            micado_password=values["micado_password"] or "",
            extra={"imported_from": f"the official micado-client ('{OFFICIAL_KEY}' in data.yml)"},
        )
        record = _record(values, f"{where}.{master_id}")
        _seal(contents, record, f"{where}.{master_id}")
        contents.plaintext.update((record.id, name) for name in SECRET_FIELDS)
        records.append(record)
    return records


def _official_text(value: Any, where: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise Damaged(f"{where} must be text")


def _legacy_text(value: Any) -> str | None:
    # 0.9 wrote '' for "no region" and whatever type the caller passed.
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _record(values: dict[str, Any], where: str) -> MasterRecord:
    values.setdefault("state", "ready")  # records written before states existed are finished ones
    for name in REQUIRED_TEXT:
        if not isinstance(values.get(name), str):
            problem = "is missing" if values.get(name) is None else "must be text"
            raise Damaged(f"{where}.{name} {problem}")
    for name in OPTIONAL_TEXT:
        if not isinstance(values.setdefault(name, None), (str, type(None))):
            raise Damaged(f"{where}.{name} must be text or null")
    if not isinstance(values.setdefault("extra", {}), dict):
        raise Damaged(f"{where}.extra must be a mapping")
    return MasterRecord(**values)


def _check_unique(records: list[MasterRecord]) -> None:
    seen: set[str] = set()
    for record in records:
        if record.id in seen:
            raise Damaged(f"the master id {record.id!r} appears twice")
        seen.add(record.id)


def dump(records: list[MasterRecord], key: bytes, read: Contents) -> bytes:
    """Return the file content for ``records``, secrets encrypted under ``key``.

    A :data:`SEALED` secret is written as it was read (from ``read``, the file's
    contents, whose key is ``key``), without being decrypted.
    """
    masters = []
    for record in records:
        entry = dataclasses.asdict(record)
        for name in SECRET_FIELDS:
            if entry[name] == SEALED:
                found = read.sealed.get((record.id, name))
                if found is None:
                    raise Damaged(f"the master {record.id!r} has no stored {name} to keep")
                entry[name] = crypto.encrypt(key, found[0], _aad(record.id, name)) if read.legacy else found[0]
            elif entry[name] is not None:
                entry[name] = crypto.encrypt(key, entry[name], _aad(record.id, name))
        masters.append(entry)
    document = {_FORMAT_KEY: STORE_FORMAT, "key_id": crypto.key_id(key), "masters": masters}
    if not read.foreign:
        return (json.dumps(document, indent=2, ensure_ascii=True) + "\n").encode("ascii")
    ours = "".join(f"{name}: " + json.dumps(value, indent=2, ensure_ascii=True).replace("\n", "\n  ") + "\n"
                   for name, value in document.items())
    if len(ours.encode("ascii")) > MAX_YAML_BYTES:
        raise Damaged(
            f"shared with other programs ({', '.join(repr(name) for name, _ in read.foreign)}), it is read as "
            f"YAML, at most {MAX_YAML_BYTES} bytes: keep the two apart (MICADO_CLI_DIR)"
        )
    for theirs in (_verbatim(read), _as_json(read)):
        if theirs is None:
            continue
        text = theirs + ours
        if _reads_back(text, document, read.foreign):
            return text.encode("utf-8")
    raise Damaged(
        "its entries of other programs (" + ", ".join(repr(name) for name, _ in read.foreign)
        + ") could not be kept as they are"
    )


def _verbatim(read: Contents) -> str | None:
    """The foreign top-level entries as they are in the file (what precedes the first key too);
    ``None`` when the file's top level is not a block mapping of keys starting lines."""
    from ruamel.yaml import YAML
    from ruamel.yaml.nodes import MappingNode

    if len(read.text) > MAX_YAML_BYTES:  # a JSON file of that size: not composed as YAML
        return None
    try:
        node = YAML(typ="safe", pure=True).compose(read.text)  # bounded: the text was safe_load-ed
    except Exception:  # noqa: BLE001 - the text was read once already; anything odd: the other form
        return None
    if not isinstance(node, MappingNode) or node.flow_style or not node.value:
        return None
    starts = [key.start_mark.index for key, _ in node.value]
    text = read.text
    if any(key.start_mark.column != 0 or key.tag != "tag:yaml.org,2002:str" for key, _ in node.value):
        return None
    if any(start != 0 and text[start - 1] != "\n" for start in starts):
        return None
    ends = starts[1:] + [len(text)]
    wanted = {repr(name) for name, _ in read.foreign}
    chunks = [text[:starts[0]]]
    for (key, _), start, end in zip(node.value, starts, ends, strict=True):
        if repr(key.value) in wanted:
            chunk = text[start:end]
            chunks.append(chunk if chunk.endswith("\n") else chunk + "\n")
    return "".join(chunks)


def _as_json(read: Contents) -> str | None:
    """The foreign top-level entries in JSON (values kept, not the bytes); ``None`` if one is not JSON."""
    try:
        return "".join(json.dumps(str(name)) + ": "
                       + json.dumps(value, indent=2, ensure_ascii=True).replace("\n", "\n  ") + "\n"
                       for name, value in read.foreign)
    except (TypeError, ValueError):  # a date, a set...
        return None


def _reads_back(text: str, document: dict[str, Any], foreign: list[tuple[Any, Any]]) -> bool:
    """Whether ``text`` reads as ``document`` plus the ``foreign`` entries, nothing else."""
    try:
        again = safe_load(text)
    except YamlSyntaxError:
        return False
    return isinstance(again, dict) and list(again.items()) == list(foreign) + list(document.items())


def _aad(master_id: Any, name: str) -> bytes:
    return f"micado-client/{master_id}/{name}".encode()
