"""The ``micado master info`` and ``micado master deploy`` commands (see :mod:`micado.cli`)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from micado.client import MicadoClient

__all__ = ["add_commands", "run"]

#: ``master deploy`` options: (flag, type, help); the defaults are ``deploy()``'s own.
_DEPLOY_OPTIONS: tuple[tuple[str, type, str], ...] = (
    ("ssh-user", str, "a sudoer on the host (default: ubuntu)"),
    ("ssh-port", int, "the host's SSH port (default: 22)"),
    ("micado-user", str, "MiCADO web user (default: admin); password: MICADO_PASSWORD, else random"),
    ("micado-version", str, "ansible-micado release tag to deploy (default: the newest)"),
    ("playbook", str, "ansible-micado source instead: tarball, folder or URL"),
    ("registry-credentials", str, "container-registry credentials file"),
    ("api-port", int, "HTTPS port of the MiCADO API (default: 443)"),
    ("remote-cert-path", str, "the master's certificate on the host"),
    ("ssh-timeout", float, "seconds for SSH to accept the key (default: 600)"),
    ("install-timeout", float, "seconds for the Ansible deployment (default: 3600)"),
    ("api-timeout", float, "seconds for the API to answer after the deployment (default: 600)"),
)


def add_commands(commands: Any) -> None:
    """Add ``info`` and ``deploy`` to the ``master`` subparsers.

    Args:
        commands: the ``master`` group's ``add_subparsers()`` object.
    """
    info = commands.add_parser("info", help="show a stored master (passwords only with --show-password)")
    info.add_argument("master_id", help="a stored master's id, or a prefix of it that only it has")
    info.add_argument("--show-password", action="store_true",
                      help="also print the MiCADO web password and the Grafana admin password")
    deploy = commands.add_parser("deploy", help="install MiCADO on a host you already have (no cloud VM is made)")
    deploy.add_argument("--host", required=True, help="the host's address")
    deploy.add_argument("--ssh-key", required=True, help="your SSH private key for the host (read, never copied)")
    for flag, value_type, text in _DEPLOY_OPTIONS:
        deploy.add_argument("--" + flag, dest=flag.replace("-", "_"), type=value_type, help=text)
    deploy.add_argument("--set", action="append", default=[], dest="settings", metavar="KEY=VALUE",
                        help="a setting of the ansible-micado release (repeatable)")


def run(args: argparse.Namespace, client: MicadoClient, out: Callable[[Any, str], None]) -> bool:
    """Run ``info`` or ``deploy``; ``False`` for other commands.

    Raises:
        MicadoException: as :meth:`~micado.master.facade.MicadoMaster.deploy` or ``attach``.
    """
    if args.command == "info":
        client.master.attach(master_id=client.master.store.resolve(args.master_id))
        data = client.master.info()
        if args.show_password:
            login = client.master.credentials()
            data = {**data, "micado_password": login.password, "grafana_password": login.grafana_password}
        out(data, "\n".join(f"{key}: {'-' if value is None else value}" for key, value in data.items()))
        return True
    if args.command == "deploy":
        from micado.cli import ProgressLine, parse_settings

        kwargs: dict[str, Any] = {name: getattr(args, name) for name in
                                  (flag.replace("-", "_") for flag, _, _ in _DEPLOY_OPTIONS)
                                  if getattr(args, name) is not None}
        if args.settings:
            kwargs["settings"] = parse_settings(args.settings)
        if os.environ.get("MICADO_PASSWORD"):
            kwargs["micado_password"] = os.environ["MICADO_PASSWORD"]
        progress = ProgressLine(sys.stderr)
        try:
            master_id = client.master.deploy(host=args.host, ssh_key=args.ssh_key, progress=progress, **kwargs)
        finally:
            progress.done()
        out(client.master.info(), f"deployed master {master_id} at {client.master.endpoint}")
        return True
    return False
