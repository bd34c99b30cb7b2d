"""How a launcher's :meth:`~micado.launcher.base.Launcher.record_fields` live in a master record.

The record keeps the OpenStack login in fields of its own (``auth_url``, ``region_name``,
``project_id``, ``user_domain_name``: the 0.9 store format has them too); whatever else
a launcher needs to find its cloud again goes to ``extra["cloud"]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from micado.config.store import MasterRecord

__all__ = ["RECORD_CLOUD_FIELDS", "split_cloud_fields", "cloud_fields_of"]

#: Launcher fields that are fields of :class:`~micado.config.store.MasterRecord` itself.
RECORD_CLOUD_FIELDS = ("auth_url", "region_name", "project_id", "user_domain_name")


def split_cloud_fields(fields: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(record field values, the rest for extra["cloud"])`` of a launcher's record fields."""
    own = {name: fields[name] for name in RECORD_CLOUD_FIELDS if name in fields}
    rest = {name: value for name, value in fields.items() if name not in RECORD_CLOUD_FIELDS}
    return own, rest


def cloud_fields_of(record: MasterRecord) -> dict[str, Any]:
    """The launcher's record fields, put back together from a record."""
    fields = {name: getattr(record, name) for name in RECORD_CLOUD_FIELDS}
    cloud = record.extra.get("cloud")
    if isinstance(cloud, dict):
        fields.update(cloud)
    return fields
