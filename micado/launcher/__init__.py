"""Cloud launchers: start, inspect and remove the master VM; they know clouds, not MiCADO.

:class:`~micado.launcher.base.Launcher` is the interface, and
:class:`~micado.launcher.openstack.OpenStackLauncher` its OpenStack implementation (EC2
is on the roadmap). Cloud SDKs are imported only when a launcher is used.
"""
