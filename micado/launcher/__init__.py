"""Cloud launchers: start, inspect and remove the master VM; they know clouds, not MiCADO.

:class:`~micado.launcher.base.Launcher` is the interface, and
:class:`~micado.launcher.openstack.OpenStackLauncher` its OpenStack implementation, and
:class:`~micado.launcher.ec2.EC2Launcher` the EC2 one (boto3, the ``ec2`` extra). Cloud
SDKs are imported only when a launcher talks to its cloud.
"""
