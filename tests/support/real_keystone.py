"""A real OpenStack Keystone on 127.0.0.1 for the tests, from the virtualenv ``scripts/keystone.sh`` makes.

:class:`RealKeystone` sets one up in a folder (sqlite database, fernet keys,
``keystone-manage bootstrap`` with an admin of its own), serves it with werkzeug on
a free loopback port, and offers what the tests need of an administrator: users
with a project each, catalog entries for the emulator's services.
"""

from __future__ import annotations

import grp
import os
import pwd
import secrets
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import requests
from paths import ROOT

#: Where scripts/keystone.sh installs Keystone.
VENV = Path(os.environ.get("MICADO_KEYSTONE_VENV", ROOT / ".keystone-venv"))
REGION = "RegionOne"
_NAMES = {"compute": "nova", "image": "glance", "network": "neutron"}


def installed() -> bool:
    """Whether the Keystone virtualenv is there (``sh scripts/keystone.sh`` makes it)."""
    return (VENV / "bin" / "keystone-manage").is_file() and (VENV / "bin" / "python").is_file()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RealKeystone:
    """A Keystone of our own on 127.0.0.1 (see the module docstring).

    Args:
        folder: where its configuration, database, keys and log go.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/v3"
        self.admin_password = secrets.token_urlsafe(12)
        self.admin_token = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._roles: dict[str, str] = {}

    def _config(self) -> Path:
        path = self.folder / "keystone.conf"
        path.write_text(
            "[DEFAULT]\nuse_stderr = true\n"
            f"[database]\nconnection = sqlite:///{self.folder / 'keystone.db'}\n"
            f"[fernet_tokens]\nkey_repository = {self.folder / 'fernet-keys'}\n"
            f"[fernet_receipts]\nkey_repository = {self.folder / 'fernet-receipts'}\n"
            "[token]\nprovider = fernet\n"
        )
        return path

    def _manage(self, config: Path, *args: str) -> None:
        with open(self.folder / "keystone-manage.log", "ab") as log:
            subprocess.run([str(VENV / "bin" / "keystone-manage"), "--config-file", str(config), *args],
                           stdout=log, stderr=subprocess.STDOUT, check=True, timeout=120)

    def start(self) -> RealKeystone:
        """Create the database and keys, bootstrap the admin, serve; return self once it answers."""
        config = self._config()
        user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
        self._manage(config, "db_sync")
        self._manage(config, "fernet_setup", "--keystone-user", user, "--keystone-group", group)
        self._manage(config, "bootstrap", "--bootstrap-password", self.admin_password,
                     "--bootstrap-public-url", self.url, "--bootstrap-region-id", REGION)
        log = open(self.folder / "keystone.log", "wb")  # noqa: SIM115 - the server's for its whole life
        self._process = subprocess.Popen(
            [str(VENV / "bin" / "python"), str(Path(__file__).with_name("keystone_wsgi.py")), str(self.port)],
            env={**os.environ, "OS_KEYSTONE_CONFIG_FILES": str(config)}, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 60
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"keystone exited: {(self.folder / 'keystone.log').read_text()[-2000:]}")
            try:
                if requests.get(self.url, timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("keystone did not answer within 60 s")
            time.sleep(0.2)
        self.admin_token = self.token("admin", self.admin_password, project_name="admin")
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def __enter__(self) -> RealKeystone:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    # --- what an administrator does ------------------------------------------------------

    def _admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = requests.request(method, f"{self.url}{path}", json=body, timeout=10,
                                  headers={"X-Auth-Token": self.admin_token})
        answer.raise_for_status()
        return answer.json() if answer.content else {}

    def token(self, username: str, password: str, *, project_id: str | None = None,
              project_name: str | None = None) -> str:
        """Log in with a password; return the project-scoped token."""
        project = {"id": project_id} if project_id else {"name": project_name, "domain": {"id": "default"}}
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": username, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": project}}}
        answer = requests.post(f"{self.url}/auth/tokens", json=body, timeout=10)
        answer.raise_for_status()
        return answer.headers["X-Subject-Token"]

    def add_user(self, project_name: str, username: str) -> dict[str, str]:
        """Create a project and a user with the ``member`` role on it.

        Returns:
            The login: ``auth_url``, ``region``, ``project_id``, ``user_id``,
            ``user_domain_name``, ``username``, ``password``.
        """
        if not self._roles:
            self._roles = {r["name"]: r["id"] for r in self._admin("GET", "/roles")["roles"]}
        project = self._admin("POST", "/projects", {"project": {"name": project_name, "domain_id": "default"}})
        password = secrets.token_urlsafe(12)
        user = self._admin("POST", "/users", {"user": {"name": username, "password": password,
                                                       "domain_id": "default"}})
        project_id, user_id = project["project"]["id"], user["user"]["id"]
        self._admin("PUT", f"/projects/{project_id}/users/{user_id}/roles/{self._roles['member']}")
        return {"auth_url": self.url, "region": REGION, "project_id": project_id, "user_id": user_id,
                "user_domain_name": "Default", "username": username, "password": password}

    def register(self, endpoints: dict[str, str]) -> list[str]:
        """Put services in the catalog (public endpoints in ``RegionOne``).

        Args:
            endpoints: URL by service type (``compute``, ``image``, ``network``; ``identity`` is skipped).

        Returns:
            The ids of the services made, for :meth:`unregister`.
        """
        services = []
        for kind, url in endpoints.items():
            if kind == "identity":
                continue
            service = self._admin("POST", "/services", {"service": {"type": kind, "name": _NAMES[kind]}})
            service_id = service["service"]["id"]
            self._admin("POST", "/endpoints", {"endpoint": {"service_id": service_id, "interface": "public",
                                                            "url": url, "region_id": REGION}})
            services.append(service_id)
        return services

    def unregister(self, service_ids: list[str]) -> None:
        """Take services (and their endpoints) out of the catalog."""
        for service_id in service_ids:
            for endpoint in self._admin("GET", f"/endpoints?service_id={service_id}")["endpoints"]:
                self._admin("DELETE", f"/endpoints/{endpoint['id']}")
            self._admin("DELETE", f"/services/{service_id}")
