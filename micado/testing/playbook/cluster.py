"""The Kubernetes files the stand-in release leaves on a master: a kubeconfig and a join token.

A real MiCADO master runs Kubernetes: K3s from 0.11 on (a kubeconfig at
``/etc/rancher/k3s/k3s.yaml`` for the API on ``https://127.0.0.1:6443``, and the
token agents join with at ``/var/lib/rancher/k3s/server/node-token``), kubeadm before
(``/etc/kubernetes/admin.conf``, the API on the master's address). The stand-in play
runs this module on the VM, after it made the master's certificate::

    python -m micado.testing.playbook.cluster --distribution k3s --ca-file ssl.pem \\
        --kubeconfig etc/rancher/k3s/k3s.yaml --server https://127.0.0.1:6443 \\
        --node-token var/lib/rancher/k3s/server/node-token

The kubeconfig's cluster certificate is the master's self-signed certificate and its
user a random bearer token, new on every run (as K3s and kubeadm write theirs anew).
The join token is shaped like K3s's (``K10<sha256 of the CA>::server:<secret>``) and,
as K3s keeps it, written only when there is none yet. Both files are mode 0600.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from micado.config.bounded_yaml import safe_dump
from micado.config.files import write_private
from micado.testing.tls import split_pem

__all__ = ["DISTRIBUTIONS", "kubeconfig", "node_token", "write_cluster_files", "main"]

#: Names in the kubeconfig each distribution writes: (cluster, user, context).
DISTRIBUTIONS: dict[str, tuple[str, str, str]] = {
    "k3s": ("default", "default", "default"),
    "kubeadm": ("kubernetes", "kubernetes-admin", "kubernetes-admin@kubernetes"),
}


def kubeconfig(distribution: str, server: str, ca_pem: bytes, token: str) -> dict[str, Any]:
    """The kubeconfig of a master's cluster admin, as a mapping.

    Args:
        distribution: ``"k3s"`` or ``"kubeadm"`` (the names of cluster, user and context).
        server: the API server's URL.
        ca_pem: the PEM of the certificate the API server presents.
        token: the admin's bearer token.

    Returns:
        ``apiVersion``, ``kind``, ``clusters``, ``users``, ``contexts``, ``current-context``.

    Raises:
        ValueError: the distribution is unknown.
    """
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"unknown Kubernetes distribution {distribution!r}; choose one of {', '.join(DISTRIBUTIONS)}")
    cluster, user, context = DISTRIBUTIONS[distribution]
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {
            "server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode("ascii")}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
        "current-context": context,
        "preferences": {},
    }


def node_token(ca_pem: bytes) -> str:
    """A join token shaped like K3s's: ``K10<sha256 of the CA PEM>::server:<32 random hex digits>``."""
    return f"K10{hashlib.sha256(ca_pem).hexdigest()}::server:{secrets.token_hex(16)}"


def write_cluster_files(*, distribution: str, ca_file: Path, kubeconfig_file: Path, server: str,
                        node_token_file: Path | None = None) -> None:
    """Write the kubeconfig (always) and the join token (when asked and not there yet), mode 0600.

    Args:
        distribution: ``"k3s"`` or ``"kubeadm"``.
        ca_file: the master's PEM file (certificate and key, as ``ssl.pem``); only the
            certificate goes into the kubeconfig.
        kubeconfig_file: where the kubeconfig goes; missing folders are made (0755).
        server: the API server's URL.
        node_token_file: where the join token goes, or ``None`` (kubeadm keeps none).

    Raises:
        ValueError: the distribution is unknown or ``ca_file`` holds no certificate.
        OSError: a file could not be read or written.
    """
    ca_pem, _key = split_pem(Path(ca_file).read_bytes(), key_required=False)
    config = kubeconfig(distribution, server, ca_pem, secrets.token_hex(32))
    Path(kubeconfig_file).parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    write_private(kubeconfig_file, safe_dump(config))
    if node_token_file is not None:
        Path(node_token_file).parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        write_private(node_token_file, node_token(ca_pem) + "\n", exclusive=True)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line the stand-in play runs on the VM (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m micado.testing.playbook.cluster", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--distribution", choices=sorted(DISTRIBUTIONS), required=True)
    parser.add_argument("--ca-file", type=Path, required=True, help="the master's certificate (PEM)")
    parser.add_argument("--kubeconfig", type=Path, required=True, help="the kubeconfig to write")
    parser.add_argument("--server", required=True, help="the API server's URL")
    parser.add_argument("--node-token", type=Path, help="the join token file to write if missing (K3s)")
    args = parser.parse_args(argv)
    write_cluster_files(distribution=args.distribution, ca_file=args.ca_file, kubeconfig_file=args.kubeconfig,
                        server=args.server, node_token_file=args.node_token)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
