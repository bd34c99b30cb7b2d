"""The EC2 launcher (Amazon EC2 and EC2-compatible clouds, through boto3: the ``ec2`` extra).

:class:`~micado.launcher.ec2.launcher.EC2Launcher` starts the master;
:mod:`~micado.launcher.ec2.api` makes the bounded, typed boto3 calls.
"""

from micado.launcher.ec2.launcher import ADDRESS_MODES, ALLOCATED_TAG, LAUNCH_TAG, STORE_TAG, EC2Launcher

__all__ = ["EC2Launcher", "LAUNCH_TAG", "STORE_TAG", "ALLOCATED_TAG", "ADDRESS_MODES"]
