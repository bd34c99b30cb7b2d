"""Cloud launchers: start, inspect and remove the master VM; they know clouds, not MiCADO.

:class:`~micado.launcher.base.Launcher` is the interface. Each cloud is a package of its
own and declares everything of that cloud (its ``create()`` arguments, its credentials
entry, its own configuration source): :class:`~micado.launcher.openstack.OpenStackLauncher`
and :class:`~micado.launcher.ec2.EC2Launcher` (needs the ``ec2`` extra, boto3). More are
added by packages (entry-point group ``micado.launchers``) or by
:func:`~micado.launcher.registry.register_launcher`; see :mod:`micado.launcher.registry`.
"""

from micado.launcher.registry import (
    BUILTIN_LAUNCHERS,
    DEFAULT_LAUNCHER,
    ENTRY_POINT_GROUP,
    launcher_class,
    launcher_classes,
    launcher_names,
    register_launcher,
    unregister_launcher,
)

__all__ = ["LAUNCHERS", "BUILTIN_LAUNCHERS", "DEFAULT_LAUNCHER", "ENTRY_POINT_GROUP", "launcher_class",
           "launcher_classes", "launcher_names", "register_launcher", "unregister_launcher"]

#: The built-in launchers, name -> ``module:Class`` (the earlier name of
#: :data:`~micado.launcher.registry.BUILTIN_LAUNCHERS`; :func:`launcher_names` has them all).
LAUNCHERS = BUILTIN_LAUNCHERS
