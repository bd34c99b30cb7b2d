"""Which launchers exist: the built-in ones, those of installed packages, those registered by code.

A launcher is a :class:`~micado.launcher.base.Launcher` subclass. Packages add one without
touching micado-client through the entry-point group :data:`ENTRY_POINT_GROUP`
(``micado.launchers``)::

    # pyproject.toml of the package "micado-gce"
    [project.entry-points."micado.launchers"]
    gce = "micado_gce:GCELauncher"

and code (a test, a notebook) with :func:`register_launcher`. Classes are imported only
when a launcher is used or listed (their cloud SDKs with them, lazily). This module imports
nothing of micado-client but its exceptions, so every layer can ask it.
"""

from __future__ import annotations

import importlib
import logging
import re
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from micado.exceptions import InvalidArgument

if TYPE_CHECKING:
    from micado.launcher.base import Launcher

__all__ = ["ENTRY_POINT_GROUP", "DEFAULT_LAUNCHER", "BUILTIN_LAUNCHERS", "register_launcher", "unregister_launcher",
           "launcher_names", "launcher_class", "launcher_classes", "launcher_for_credentials", "canonical_name"]

log = logging.getLogger(__name__)

#: The entry-point group packages register their launchers in (``name = "module:Class"``).
ENTRY_POINT_GROUP = "micado.launchers"
#: The launcher of ``MicadoClient(launcher=...)``'s documented default, and of records
#: written before records named their launcher (micado-client 0.9).
DEFAULT_LAUNCHER = "openstack"
#: The launchers micado-client ships: name -> ``module:Class``.
BUILTIN_LAUNCHERS: dict[str, str] = {
    "openstack": "micado.launcher.openstack:OpenStackLauncher",
    "ec2": "micado.launcher.ec2:EC2Launcher",
}
_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
#: Registered by code: name -> class or ``module:Class``.
_registered: dict[str, type[Launcher] | str] = {}


def register_launcher(launcher: type[Launcher] | str, name: str | None = None) -> None:
    """Make a launcher usable as ``MicadoClient(launcher=name)`` and ``micado master create --launcher``.

    Args:
        launcher: the :class:`~micado.launcher.base.Launcher` subclass, or ``"module:Class"``
            to import it when first used.
        name: the launcher's name; default: the class's :attr:`~micado.launcher.base.Launcher.name`.

    Raises:
        InvalidArgument: the name is malformed or is a built-in launcher's, or the class
            is not a launcher.
    """
    if name is None:
        if isinstance(launcher, str):
            raise InvalidArgument("register_launcher('module:Class') needs name=")
        name = getattr(launcher, "name", None)
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InvalidArgument(f"launcher name {name!r} must be 1 to 32 lower-case letters, digits, '_' or '-'")
    if name in BUILTIN_LAUNCHERS:
        raise InvalidArgument(f"launcher name {name!r} is a built-in launcher's")
    if not isinstance(launcher, str):
        _check_class(name, launcher)
    _registered[name] = launcher


def unregister_launcher(name: str) -> None:
    """Forget a launcher :func:`register_launcher` added (built-in and installed ones stay)."""
    _registered.pop(name, None)


def _installed() -> dict[str, str]:
    """The launchers of installed packages (``micado.launchers`` entry points)."""
    found: dict[str, str] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name in BUILTIN_LAUNCHERS or not _NAME_RE.match(point.name):
            log.warning("entry point %s = %s of group %s ignored: its name is taken or malformed",
                        point.name, point.value, ENTRY_POINT_GROUP)
            continue
        found[point.name] = point.value
    return found


def _all() -> dict[str, type[Launcher] | str]:
    return {**BUILTIN_LAUNCHERS, **_installed(), **_registered}


def canonical_name(name: str) -> str:
    """A launcher name as registered: names are lower case, and may be given in any case
    (``"OpenStack"``, as code for the official micado-client 0.12 writes it)."""
    return name.lower()


def launcher_names() -> tuple[str, ...]:
    """The names of every launcher: built-in first, then installed, then registered by code."""
    return tuple(_all())


def launcher_class(name: str) -> type[Launcher]:
    """The launcher class registered under ``name``, imported now if it was not.

    Raises:
        InvalidArgument: no launcher of that name (the known ones are listed), or its
            module cannot be imported or does not hold a launcher.
    """
    known = _all()
    name = canonical_name(name) if isinstance(name, str) else name
    if not isinstance(name, str) or name not in known:
        raise InvalidArgument(f"launcher {name!r} is not supported; choose one of: {', '.join(known)}")
    target = known[name]
    if not isinstance(target, str):
        return target
    module, _, attribute = target.partition(":")
    try:
        found = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as error:
        raise InvalidArgument(f"launcher {name!r} ({target}) cannot be loaded: {error}") from None
    _check_class(name, found)
    launcher: type[Launcher] = found
    return launcher


def launcher_classes() -> list[type[Launcher]]:
    """Every launcher class; one that cannot be loaded is left out, with a warning."""
    classes = []
    for name in launcher_names():
        try:
            classes.append(launcher_class(name))
        except InvalidArgument as error:
            log.warning("%s", error)
    return classes


def launcher_for_credentials(kind: str) -> type[Launcher] | None:
    """The launcher that logs in with credentials-file entries of ``type: kind``, if any."""
    return next((cls for cls in launcher_classes() if cls.credential_type == kind), None)


def _check_class(name: str, launcher: object) -> None:
    from micado.launcher.base import Launcher  # the interface module: light, no cloud SDK

    if not (isinstance(launcher, type) and issubclass(launcher, Launcher)):
        raise InvalidArgument(f"launcher {name!r} is {launcher!r}, not a subclass of micado.launcher.base.Launcher")
    if getattr(launcher, "name", None) != name:
        raise InvalidArgument(f"launcher {name!r}: its class {launcher.__name__} has name {launcher.name!r}")
