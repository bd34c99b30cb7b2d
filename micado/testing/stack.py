"""The local MiCADO stack: a cloud, VMs and playbooks on one machine, for tests and the demo.

:class:`LocalStack` starts the OpenStack emulator (:mod:`micado.testing.openstack`)
whose servers are local OpenSSH "VMs" (:mod:`micado.testing.vm`) on loopback
addresses, packs the ansible-micado-shaped playbook (:mod:`micado.testing.playbook`)
into a release-like tarball, and writes the cloud credentials into a MiCADO dir of
its own. ``client.master.create(**stack.create_kwargs)`` then runs the real
lifecycle: Nova through openstacksdk/novaclient, SSH, ``ansible-playbook``, and the
TOSCA Submitter emulator the play starts on the VM.

With ``oidc=True`` the stack also runs an OpenID Connect provider of its own
(:mod:`micado.testing.oidc`), registers it in the emulator's Keystone as identity
provider :data:`OIDC_IDENTITY_PROVIDER` (protocol ``openid``), and writes MiCADO's
OpenID Connect credentials (``pre_authentication`` openid block with the provider's
token endpoint as ``url`` and a refresh token, ``access_token: *OPENID``): creates
then log in through Keystone federation.

Behind a real Keystone (``keystone_url=``, ``project_id=``, ``credentials_file=``) the
stack's cloud takes that Keystone's tokens and keeps its projects apart, and the
MiCADO dir holds the user's own credentials file; register the URLs of
``stack.cloud.endpoints`` in that Keystone's catalog (compute, image, network).

Command line: ``python -m micado.testing.stack --ready-file R`` writes R (JSON:
``micado_cli_dir``, ``create_kwargs``, the emulator's login and ``pid``) once
everything listens; SIGTERM stops everything it started, VMs included.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import random
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Any

from micado.installer.playbooks import ENV_RELEASE_URL
from micado.testing.oidc import OIDCProvider
from micado.testing.openstack import OpenStackEmulator
from micado.testing.playbook import VERSIONS, build_tarball
from micado.testing.vm import VMPool, free_port
from micado.testing._serving import Background

__all__ = ["LocalStack", "main", "OIDC_IDENTITY_PROVIDER"]

#: The identity provider the stack's OpenID Connect provider is registered as (EGI clouds' name).
OIDC_IDENTITY_PROVIDER = "egi.eu"


class LocalStack:
    """Everything a ``master.create`` needs, on 127.0.0.0/8.

    Args:
        base_dir: where to keep the VMs, the MiCADO dir and the tarball; a new
            temporary folder (removed at :meth:`stop`) when ``None``.
        layout: the playbook layout to pack, ``"0.12"`` or ``"0.9"``.
        boot_delay: seconds an emulated server stays in BUILD.
        fail_playbook: pack a playbook whose play fails (to test failure handling).
        keystone_url: a real Keystone v3 whose tokens the cloud takes (validated on
            every request); ``None`` runs the emulator's own Keystone.
        project_id: the project the cloud's seeded resources (network, key pair,
            security groups) belong to; required with ``keystone_url``: the
            project the credentials log in to.
        credentials_file: the user's own ``credentials-cloud-api.yml``, copied into
            the MiCADO dir; required with ``keystone_url``. Without it the stack
            writes the emulator's own user and password there.
        oidc: log in with OpenID Connect: start :attr:`oidc_provider` and write its
            refresh token in MiCADO's format instead of the password.

    Raises:
        ValueError: ``keystone_url`` without ``project_id`` or ``credentials_file``,
            a ``credentials_file`` without ``keystone_url``, or ``oidc`` with ``keystone_url``.

    Attributes:
        micado_cli_dir: the MiCADO dir with the credentials file; use it as ``MICADO_CLI_DIR``.
        create_kwargs: the keyword arguments for ``client.master.create()``.
        cloud: the :class:`~micado.testing.openstack.OpenStackEmulator`.
        vms: the :class:`~micado.testing.vm.VMPool` behind the emulator's servers.
        oidc_provider: the :class:`~micado.testing.oidc.OIDCProvider` with ``oidc=True``, else ``None``.
    """

    def __init__(
        self,
        base_dir: str | os.PathLike[str] | None = None,
        *,
        layout: str = "0.12",
        boot_delay: float = 0.2,
        fail_playbook: bool = False,
        keystone_url: str | None = None,
        project_id: str | None = None,
        credentials_file: str | os.PathLike[str] | None = None,
        oidc: bool = False,
    ) -> None:
        if oidc and keystone_url is not None:
            raise ValueError("oidc=True registers the provider in the emulator's own Keystone: not with keystone_url")
        if keystone_url is not None and (project_id is None or credentials_file is None):
            raise ValueError("behind a real Keystone (keystone_url) give project_id and credentials_file: "
                             "the project and the login of the user who creates masters")
        if credentials_file is not None and keystone_url is None:
            raise ValueError("credentials_file is for a real Keystone: give keystone_url too")
        self.credentials_file = Path(credentials_file) if credentials_file is not None else None
        self._owns_dir = base_dir is None
        self.base_dir = Path(base_dir) if base_dir else Path(tempfile.mkdtemp(prefix="micado-stack-"))
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.layout = layout
        self.fail_playbook = fail_playbook
        self.micado_cli_dir = self.base_dir / "micado-cli"
        subnet = f"127.{random.randint(64, 250)}.{random.randint(1, 250)}"
        self.floating_ips = [f"{subnet}.{host}" for host in range(10, 30)]
        self.ssh_port = free_port(self.floating_ips[0])
        self.api_port = free_port(self.floating_ips[0])
        while self.api_port == self.ssh_port:
            self.api_port = free_port(self.floating_ips[0])
        self.vms = VMPool(self.base_dir / "vms", ssh_port=self.ssh_port, api_port=self.api_port)
        self.cloud = OpenStackEmulator(
            boot_delay=boot_delay,
            floating_ip_pool=self.floating_ips,
            on_boot=self.vms.boot,
            on_address=self.vms.set_address,
            on_delete=self.vms.delete,
            keystone_url=keystone_url,
            project_id=project_id,
        )
        self.oidc_provider = OIDCProvider() if oidc else None
        self.create_kwargs: dict[str, Any] = {}
        self.mirror: ReleaseMirror | None = None
        self._started = False

    def start(self) -> LocalStack:
        """Start the cloud and the release mirror, pack the playbook, write the credentials; return self."""
        try:
            self.cloud.start()
            self._started = True
            if self.oidc_provider is not None:
                self.oidc_provider.start()
                self.cloud.add_identity_provider(OIDC_IDENTITY_PROVIDER, self.oidc_provider.issuer)
            tarball = build_tarball(self.layout, self.base_dir, fail=self.fail_playbook)
            self.mirror = ReleaseMirror({f"v{VERSIONS[self.layout]}": tarball}).start()
            self._write_credentials()
        except BaseException:
            self.stop()
            raise
        self.create_kwargs = {
            **self._cloud_kwargs(),
            "ssh_user": self.vms.user,
            "ssh_port": self.ssh_port,
            "api_port": self.api_port,
            "remote_cert_path": "var/lib/micado/zorp/config/ssl.pem",
        }
        if self.layout != "0.12" or self.fail_playbook:  # the default release is the 0.12 stand-in
            self.create_kwargs["micado_version"] = f"v{VERSIONS[self.layout]}"
        return self

    def _cloud_kwargs(self) -> dict[str, Any]:
        """The ``create()`` arguments that name the cloud and its seeded resources."""
        login, seeded = self.cloud.login, self.cloud.seeded
        kwargs = {
            "auth_url": login["auth_url"],
            "project_id": login["project_id"],
            "image": seeded["image"],
            "flavor": seeded["flavor"],
            "network": seeded["network"],
            "keypair": seeded["keypair"],
            "security_group": seeded["security_group"],
            "region": login["region"],
            "user_domain_name": login["user_domain_name"],
        }
        if login["user_domain_name"] is None or self.oidc_provider is not None:  # the credentials file says
            del kwargs["user_domain_name"]
        return kwargs

    def _credentials_text(self) -> str:
        """The ``credentials-cloud-api.yml`` the stack's MiCADO dir gets."""
        if self.credentials_file is not None:
            return self.credentials_file.read_text(encoding="utf-8")
        login = self.cloud.login
        if self.oidc_provider is not None:
            return (  # MiCADO's own shape: the openid block (url: the token endpoint), the nova entry's alias
                "pre_authentication:\n"
                "  - type: openid\n"
                "    auth_data: &OPENID\n"
                f"      url: {json.dumps(self.oidc_provider.token_endpoint)}\n"
                f"      refresh_token: {json.dumps(self.oidc_provider.issue_refresh_token('micado-user'))}\n"
                "resource:\n"
                "  - type: nova\n"
                "    auth_data:\n"
                f"      identity_provider: {OIDC_IDENTITY_PROVIDER}\n"
                "      access_token: *OPENID\n"
                f"      project_id: {json.dumps(login['project_id'])}\n"
            )
        return (
            "resource:\n"
            "  - type: nova\n"
            "    auth_data:\n"
            f"      username: {json.dumps(login['username'])}\n"
            f"      password: {json.dumps(login['password'])}\n"
        )

    def _write_credentials(self) -> None:
        self.micado_cli_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        text = self._credentials_text()
        path = self.micado_cli_dir / "credentials-cloud-api.yml"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)

    @property
    def environment(self) -> dict[str, str]:
        """Environment variables that point micado-client at this stack's MiCADO dir and release mirror.

        ``MICADO_RELEASE_URL`` makes ``create()`` download the release it asks for
        (by default v0.12.6) from the stack's loopback mirror, which serves the
        stand-in playbook under that version: the same code path as a real release.
        """
        environment = {"MICADO_CLI_DIR": str(self.micado_cli_dir)}
        if self.mirror is not None:
            environment[ENV_RELEASE_URL] = self.mirror.url_template
        return environment

    def describe(self) -> dict[str, Any]:
        """What the ready file holds: the MiCADO dir, ``create_kwargs`` and the cloud login."""
        login = self.cloud.login
        return {
            "micado_cli_dir": str(self.micado_cli_dir),
            "environment": self.environment,
            "create_kwargs": self.create_kwargs,
            **{key: login[key] for key in ("auth_url", "username", "password", "project_id",
                                           "user_domain_name", "region")},
            "pid": os.getpid(),
        }

    def stop(self) -> None:
        """Stop every VM (and what runs in it) and the cloud; remove the folder if it is ours."""
        try:
            self.vms.stop_all()
        finally:
            if self.mirror is not None:
                self.mirror.stop()
                self.mirror = None
            if self._started:
                self.cloud.stop()
                self._started = False
            if self.oidc_provider is not None:
                self.oidc_provider.stop()
            if self._owns_dir:
                shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class ReleaseMirror:
    """A loopback HTTP server that serves release tarballs as ``/ansible-micado/<version>.tar.gz``.

    Point :envvar:`MICADO_RELEASE_URL` at :attr:`url_template` and ``create()``
    downloads its releases from here instead of GitHub.

    Args:
        releases: version tag (``"v0.12.6"``) -> tarball to serve.
    """

    def __init__(self, releases: dict[str, Path]) -> None:
        self.releases = dict(releases)
        self._server: Background | None = None

    @property
    def url_template(self) -> str:
        """The download URL with ``{version}`` in place of the version tag."""
        assert self._server is not None, "the mirror is not started"
        return f"http://127.0.0.1:{self._server.port}/ansible-micado/{{version}}.tar.gz"

    def start(self) -> ReleaseMirror:
        """Serve on a free loopback port; return self."""
        releases = self.releases

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                name = self.path.removeprefix("/ansible-micado/").removesuffix(".tar.gz")
                tarball = releases.get(name)
                if tarball is None or not self.path.startswith("/ansible-micado/"):
                    self.send_error(404, "no such release")
                    return
                body = tarball.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "application/gzip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = Background(http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler), "release-mirror")
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.stop()
            self._server = None


def main(argv: list[str] | None = None) -> int:
    """Run the stack until SIGTERM/SIGINT; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m micado.testing.stack", description=__doc__.splitlines()[0])
    parser.add_argument("--ready-file", required=True, help="JSON file written once everything listens")
    parser.add_argument("--layout", default="0.12", choices=["0.12", "0.10", "0.9"], help="playbook layout")
    parser.add_argument("--base-dir", help="folder to keep everything in (default: a temporary one)")
    parser.add_argument("--keystone-url", help="a real Keystone v3 whose tokens the cloud takes")
    parser.add_argument("--project-id", help="with --keystone-url: the project the seeded resources belong to")
    parser.add_argument("--credentials-file", help="with --keystone-url: the user's credentials-cloud-api.yml")
    parser.add_argument("--oidc", action="store_true",
                        help="log in with OpenID Connect (a provider of the stack's own)")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with LocalStack(args.base_dir, layout=args.layout, keystone_url=args.keystone_url, project_id=args.project_id,
                    credentials_file=args.credentials_file, oidc=args.oidc) as stack:
        ready = Path(args.ready_file)
        temp = ready.with_name(ready.name + ".tmp")
        descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(stack.describe(), handle, indent=2)
        temp.replace(ready)
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
