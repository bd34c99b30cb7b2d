"""The record the store keeps for each MiCADO master, and its checks."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from micado.config.bounded_yaml import MAX_DEPTH, depth_of
from micado.exceptions import InvalidArgument
from micado.launcher.registry import DEFAULT_LAUNCHER

__all__ = ["MasterRecord", "SEALED", "IMPORTED", "validate_record"]

#: What a secret field (``micado_password``, ``grafana_password``) holds in a record
#: returned by :meth:`~micado.config.store.MasterStore.list`: the value is still
#: encrypted, and only :meth:`~micado.config.store.MasterStore.get` decrypts it (one
#: record's secrets, not every record's). A record holding it can be given back to
#: ``update``, which keeps the stored secret.
SEALED = "\0sealed: MasterStore.get(id) decrypts it"
#: The state of a master the official micado-client 0.12 recorded (``micados:`` in
#: ``data.yml``): listed and attachable for its applications, never changed or destroyed
#: here (the official client owns its entry).
IMPORTED = "imported"


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
        micado_password: the MiCADO web password (encrypted at rest, hidden in ``repr``;
            :data:`SEALED` in the records :meth:`MasterStore.list` returns).
        launcher: the launcher that made the master (``openstack``).
        auth_url: the cloud's Keystone URL.
        region_name: the cloud region.
        project_id: the cloud project.
        user_domain_name: the cloud user's domain.
        name: the server name, e.g. ``MiCADO-Master-<hex>``.
        created: creation time, ISO-8601 UTC; :meth:`MasterStore.add` fills it in if ``None``.
        state: ``"ready"``, or ``"creating"`` while :meth:`MicadoMaster.create` runs
            (recorded before the cloud is touched, so that a create killed on the way
            is seen by ``list`` and removed by ``cleanup``; its ``extra`` holds the
            launch marks, the creating process and the working copy), or
            :data:`IMPORTED` for a master of the official micado-client 0.12 (read only;
            its ``micado_user``/``micado_password`` are ``""`` until that client
            finished deploying it).
        grafana_password: the Grafana admin password the deployment set, if any
            (encrypted at rest, hidden in ``repr``).
        secret_settings: the settings given whose names look secret (``*password*``,
            ``*token*``...), as JSON text (encrypted at rest, hidden in ``repr``); the
            others are in ``extra["settings"]``.
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
    launcher: str = DEFAULT_LAUNCHER
    auth_url: str | None = None
    region_name: str | None = None
    project_id: str | None = None
    user_domain_name: str | None = None
    name: str | None = None
    created: str | None = None
    grafana_password: str | None = field(default=None, repr=False)
    secret_settings: str | None = field(default=None, repr=False)
    state: str = "ready"
    extra: dict[str, Any] = field(default_factory=dict)


REQUIRED_TEXT = (
    "id", "ip", "endpoint", "api_version", "micado_user", "micado_password", "launcher", "state",
)
#: The states a record can be in.
STATES = ("creating", "ready")
OPTIONAL_TEXT = (
    "cert_path", "auth_url", "region_name", "project_id", "user_domain_name", "name", "created",
    "grafana_password", "secret_settings",
)
FIELDS = tuple(f.name for f in dataclasses.fields(MasterRecord))
#: Levels of nesting ``extra`` may have: the store holds it three levels down
#: (``{"masters": [{"extra": ...}]}``) and reads no file nested deeper than MAX_DEPTH.
MAX_EXTRA_DEPTH = MAX_DEPTH - 3


def validate_record(record: MasterRecord) -> None:
    """Check the types of a record's fields before it is stored.

    Args:
        record: the record.

    Raises:
        InvalidArgument: a field has the wrong type, the id is blank, or ``extra``
            holds something a JSON round trip would not give back unchanged, or is
            nested more than :data:`MAX_EXTRA_DEPTH` levels deep.
    """
    if not isinstance(record, MasterRecord):
        raise InvalidArgument(f"expected a MasterRecord, not {type(record).__name__}")
    for name in REQUIRED_TEXT:
        value = getattr(record, name)
        if not isinstance(value, str) or (name == "id" and not value.strip()):
            what = "non-empty text" if name == "id" else "text"
            raise InvalidArgument(f"MasterRecord.{name} must be {what}")
    for name in OPTIONAL_TEXT:
        if not isinstance(getattr(record, name), (str, type(None))):
            raise InvalidArgument(f"MasterRecord.{name} must be text or None")
    if record.state not in STATES:
        raise InvalidArgument(f"MasterRecord.state must be one of {', '.join(STATES)}, not {record.state!r}")
    if not isinstance(record.extra, dict):
        raise InvalidArgument("MasterRecord.extra must be a dict of plain JSON values")
    if depth_of(record.extra) > MAX_EXTRA_DEPTH:
        raise InvalidArgument(f"MasterRecord.extra is nested more than {MAX_EXTRA_DEPTH} levels deep")
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
