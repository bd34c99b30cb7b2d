"""The bundled example ADTs (real MiCADO demos, placeholders included), and copies filled in for the local stack.

The examples keep the release's placeholders (``ADD_YOUR_ID_HERE``...), which
:meth:`~micado.models.application.Applications.create` refuses (:mod:`micado.demos`), as
a user's unfilled demo is. :func:`filled` gives one with every placeholder replaced by
a value of :data:`LOCAL_VALUES` (or yours), as a user fills it in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from micado import demos
from micado.config.bounded_yaml import safe_load

__all__ = ["EXAMPLES", "LOCAL_VALUES", "filled", "write_filled"]

#: The example ADTs: ``stressng_nova.yaml``, ``nginx_nova.yaml``, ``wordpress_nova.yaml``,
#: ``stressng_ec2_latest.yaml``, ``nginx_ec2_latest.yaml``.
EXAMPLES = Path(__file__).parent / "examples"

#: A value for each placeholder of the examples, by its key, as the local stack names things.
LOCAL_VALUES: dict[str, str] = {
    "image_id": "ubuntu-22.04", "flavor_name": "m1.small", "project_id": "demo-project",
    "network_id": "private", "network_name": "private", "key_name": "micado-demo",
    "security_groups": "default", "security_group_ids": "sg-local", "region_name": "local",
    "instance_type": "t2.small", "endpoint": "https://127.0.0.1:5000/v3",
}


def filled(path: Path | str, values: Mapping[str, str] | None = None) -> str:
    """The ADT at ``path`` with its placeholders filled from ``values`` over :data:`LOCAL_VALUES`.

    Raises:
        InvalidArgument: the file is not YAML.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    given = {**LOCAL_VALUES, **(values or {})}
    keys = {re.sub(r"\[\d+\]$", "", field).rsplit(".", 1)[-1] for field in demos.unfilled_fields(safe_load(text))}
    return demos.fill(text, {name: value for name, value in given.items() if name in keys}, shown=path.name)


def write_filled(folder: Path | str, source: Path | str = EXAMPLES) -> Path:
    """Write every ``*.yaml`` of ``source`` (default: the examples) filled in, with the same names, into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(Path(source).glob("*.yaml")):
        (folder / path.name).write_text(filled(path), encoding="utf-8")
    return folder
