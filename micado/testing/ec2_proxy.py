"""Moved to :mod:`micado.testing.ec2.proxy` (the EC2 emulator is a package now); these names stay here."""

from micado.testing.ec2.proxy import EC2Faults, FaultProxy, error_document

__all__ = ["EC2Faults", "FaultProxy", "error_document"]
