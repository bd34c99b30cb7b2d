"""A loopback EC2 emulator: moto's EC2 server, a fault proxy in front, and instances as local VMs.

:class:`EC2Emulator` runs ``python -m moto.server`` (moto 5, the ``moto[server]``
extra) in a process of its own on a free port of 127.0.0.1, puts a
:class:`~micado.testing.ec2.proxy.FaultProxy` in front of it (the endpoint clients
use: its request log and fault switches), and seeds what a launch needs::

    with EC2Emulator() as cloud:
        cloud.endpoint_url               # http://127.0.0.1:<port>
        cloud.credentials                # an EC2Auth the proxy accepts
        cloud.seeded["network"]          # a subnet on 127.64.1.0/24
        cloud.faults.instance_limit = True
        ...
        assert cloud.live_instances() == []

Addresses: moto gives instances in its default VPC a private ``10.x`` address and a
public one in ``54.214.0.0/16``, which nothing local may ever connect to. The seeded
VPC and subnet are on a loopback CIDR (``127.64.0.0/16``), so private addresses there
are loopback ones, and moto's Elastic IPs come from 127.0.0.0/8.

With a :class:`~micado.testing.vm.VMPool`, a bridge thread makes each running
instance a local sshd "VM" (its user data read with ``DescribeInstanceAttribute``),
serves SSH on the instance's public (Elastic) or private IP, per ``address``, once the
instance has one, and deletes the VM when the instance is terminated. An address
outside 127.0.0.0/8 is refused by :func:`~micado.testing.vm.require_loopback` before
anything listens or connects there, and noted in :attr:`EC2Emulator.refused`.

:class:`~micado.testing.ec2.stack.EC2Stack` is the local MiCADO stack with this
emulator as its cloud.

Layout, as moto lays out its emulators and like :mod:`micado.testing.openstack`:
:mod:`.models` holds the emulator's own state (fault switches, request log, the
seed; no HTTP), :mod:`.responses` decides what a client sees, :mod:`.proxy`
forwards the bytes to moto, :mod:`.bridge` turns instances into VMs,
:mod:`.server` runs it all and :mod:`.stack` is the local stack on EC2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from micado.testing.ec2.models import LOOPBACK_VPC_CIDR, EC2Faults
from micado.testing.ec2.proxy import FaultProxy, error_document
from micado.testing.ec2.server import EC2Emulator

if TYPE_CHECKING:
    from micado.testing.ec2.stack import EC2Stack

__all__ = ["EC2Emulator", "EC2Faults", "LOOPBACK_VPC_CIDR", "FaultProxy", "error_document", "EC2Stack"]


def __getattr__(name: str) -> Any:
    """:class:`~.stack.EC2Stack`, imported when first asked for: the local stack is a
    larger import than the emulator (the OpenStack emulator, the playbooks)."""
    if name == "EC2Stack":
        from micado.testing.ec2 import stack

        return stack.EC2Stack
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names, :class:`~.stack.EC2Stack` included (for ``dir()`` and autodoc)."""
    return sorted({*globals(), *__all__})
