"""The OpenStack launcher (Keystone v3, Nova, Glance, Neutron through openstacksdk).

:class:`~micado.launcher.openstack.launcher.OpenStackLauncher` starts the master;
:mod:`~micado.launcher.openstack.session` logs in (password, application credential,
OpenID Connect through :mod:`~micado.launcher.openstack.openid_token`),
:mod:`~micado.launcher.openstack.floating_ips` gives the master its address and
:mod:`~micado.launcher.openstack.clouds_yaml` reads the user's ``clouds.yaml``.
"""

from micado.launcher.openstack.launcher import OpenStackLauncher

__all__ = ["OpenStackLauncher"]
