"""What the official micado-client 0.12 does to ``data.yml``, re-enacted with the same YAML library.

Facts read from its source (0.12.0 to 0.12.11, ``micado/utils/utils.py``): it loads the file with
ruamel.yaml's round-trip loader and writes it back with ``indent(mapping=2, sequence=4, offset=2)``;
a new master is appended to the top-level ``micados`` list as ``{<server id>: {fields}}`` (if the
file is missing, empty, or has no ``micados`` list, the file is replaced by ``{"micados": [new]}``);
after the deploy the same entry gets ``api_version``, ``micado_user``, ``micado_password`` and
``cert_path``; attaching looks the id up in ``micados``. Not its code: a re-enactment for the tests.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML


def _yaml() -> YAML:
    yaml = YAML()  # round trip, as the official client
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _write(path: Path, content: Any) -> None:
    out = io.StringIO()
    _yaml().dump(content, out)
    path.write_text(out.getvalue())


def persist(path: Path, server_id: str, **fields: Any) -> None:
    """A launch: append ``{server_id: fields}`` to ``micados`` (replacing a file without that list)."""
    content = _yaml().load(path.read_text()) if path.is_file() else None
    try:
        content["micados"] += [{server_id: dict(fields)}]
    except (TypeError, KeyError):
        content = {"micados": [{server_id: dict(fields)}]}
    _write(path, content)


def update(path: Path, server_id: str, **fields: Any) -> None:
    """A finished deploy: add ``fields`` to the entry of ``server_id`` (its own values win)."""
    content = _yaml().load(path.read_text())
    for entry in content["micados"]:
        if server_id in entry:
            entry[server_id] = {**fields, **entry[server_id]}
            break
    _write(path, content)


def get(path: Path, server_id: str) -> dict[str, Any]:
    """An attach: the entry's fields (``KeyError`` without ``micados``, ``LookupError`` without the id)."""
    content = _yaml().load(path.read_text())
    found = [entry for entry in content["micados"] if server_id in entry]
    if not found:
        raise LookupError(server_id)
    return dict(found[0][server_id])


def official_master(path: Path, server_id: str, ip: str, *, cert_path: str, password: str,
                    user: str = "admin", auth_url: str = "https://keystone.example:5000/v3",
                    endpoint: str | None = None) -> None:
    """An official 0.12 create on OpenStack, as it leaves ``data.yml``: the launch, then the deploy.

    ``endpoint``: default ``https://<ip>/toscasubmitter``, what 0.12 records (an emulator's has a port).
    """
    persist(path, server_id, ip=ip, auth_url=auth_url, region_name=None, project_id="0123abcd",
            user_domain_name="Default", endpoint=endpoint or f"https://{ip}/toscasubmitter")
    update(path, server_id, api_version="v2.0", micado_user=user, micado_password=password, cert_path=cert_path)
