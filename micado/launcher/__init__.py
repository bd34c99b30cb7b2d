"""Cloud launchers: start, inspect and remove the master VM; they know clouds, not MiCADO.

:class:`~micado.launcher.base.Launcher` is the interface; :data:`LAUNCHERS` names its
implementations, imported only when one is used (their cloud SDKs with them):
:class:`~micado.launcher.openstack.OpenStackLauncher` and
:class:`~micado.launcher.ec2.EC2Launcher` (needs the ``ec2`` extra, boto3).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from micado.exceptions import InvalidArgument

if TYPE_CHECKING:
    from micado.launcher.base import Launcher

__all__ = ["LAUNCHERS", "launcher_class"]

#: Launcher name -> ``module:class``.
LAUNCHERS: dict[str, str] = {
    "openstack": "micado.launcher.openstack:OpenStackLauncher",
    "ec2": "micado.launcher.ec2:EC2Launcher",
}


def launcher_class(name: str) -> type[Launcher]:
    """The launcher class registered under ``name``.

    Raises:
        InvalidArgument: no launcher of that name (the known ones are listed).
    """
    if not isinstance(name, str) or name not in LAUNCHERS:
        raise InvalidArgument(f"launcher {name!r} is not supported; choose one of: {', '.join(LAUNCHERS)}")
    module, _, cls = LAUNCHERS[name].partition(":")
    launcher: type[Launcher] = getattr(importlib.import_module(module), cls)
    return launcher
