"""A machine of the user's on the local stack, for the tests of ``master.deploy``."""

from __future__ import annotations

from pathlib import Path

__all__ = ["deploy_kwargs"]


def deploy_kwargs(stack, user_key: Path) -> dict:
    """``deploy()``'s access arguments for a host of ``stack`` that authorises ``user_key``."""
    kwargs = stack.create_kwargs
    return {"ssh_key": user_key, "ssh_user": kwargs["ssh_user"], "ssh_port": kwargs["ssh_port"],
            "api_port": kwargs["api_port"], "remote_cert_path": kwargs["remote_cert_path"]}
