"""Deploying MiCADO on a master VM with the ansible-micado playbooks.

Three steps, each a small public call, used in this order by the master model:

1. :class:`PlaybookSource` ``.resolve()`` finds the playbooks: a MiCADO release
   (``micado_version``, default :data:`DEFAULT_MICADO_VERSION`) downloaded from
   GitHub, or ``playbook=`` a local tarball, a local folder or an http(s) URL.
   Downloads and tarballs are unpacked safely into the cache
   (:func:`micado.config.paths.playbook_cache_dir`) once per version, URL or file
   content. The result is a :class:`PlaybookTree`: a folder and its :class:`Layout`.
2. :func:`prepare_workdir` makes the per-master working copy
   (:func:`micado.config.paths.work_dir`, mode 0700): the playbooks, an inventory
   that reaches the master over SSH with strict host key checking against the
   client's own known_hosts, the MiCADO web credentials and the cloud credentials
   (both mode 0600), and an ``ansible.cfg`` of our own.
3. :func:`run_playbook` runs ``ansible-playbook`` from the library's own
   environment, streams its output to the master's log file, reports task names to
   the progress callback, and turns a failure or a timeout into a typed error.

Two playbook layouts exist and are told apart by their files (:data:`LAYOUTS`):
MiCADO 0.9 (``micado-master.yml`` at the top, host ``micado-target``) and MiCADO
0.12 (``playbook/project/micado.yml``, ``playbook/inventory/hosts.yml``, host
``micado``). This module knows nothing about clouds.
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import re
import shlex
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from micado.config import paths
from micado.exceptions import CredentialsError, InstallError, InvalidArgument
from micado.installer import archive
from micado.installer.runner import run_playbook
from micado.progress import ProgressCallback, as_callback

__all__ = [
    "DEFAULT_MICADO_VERSION",
    "RELEASE_URL",
    "Layout",
    "LAYOUTS",
    "PlaybookTree",
    "PlaybookSource",
    "WorkDir",
    "detect_layout",
    "prepare_workdir",
    "run_playbook",
]

logger = logging.getLogger(__name__)

#: The newest ansible-micado release (see the project's tags and changelog).
DEFAULT_MICADO_VERSION = "v0.12.0"

#: GitHub's source tarball of a tag; it unpacks to ``ansible-micado-<version without v>/``.
RELEASE_URL = "https://github.com/micado-scale/ansible-micado/archive/refs/tags/{version}.tar.gz"

_VERSION_RE = re.compile(r"^v?\d+(\.\d+)*([-.+][A-Za-z0-9]+)*$")
_MASTER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SECRET_MODE = 0o600


@dataclass(frozen=True)
class Layout:
    """Where things are in one generation of the ansible-micado playbooks.

    Paths are POSIX strings relative to the tree root unless said otherwise.

    Attributes:
        name: the MiCADO generation, ``"0.9"`` or ``"0.12"``.
        markers: files whose presence identifies the layout.
        run_dir: the folder ``ansible-playbook`` runs in.
        playbook: the main playbook, relative to ``run_dir``.
        inventory: the inventory file to write, relative to ``run_dir``.
        host: the inventory host name the playbook targets.
        credentials_dir: where the playbook reads ``credentials-*.yml`` from.
    """

    name: str
    markers: tuple[str, ...]
    run_dir: str
    playbook: str
    inventory: str
    host: str
    credentials_dir: str

    @property
    def web_credentials_sample(self) -> str:
        """The sample web credentials file shipped with the playbooks."""
        return posixpath.normpath(f"{self.credentials_dir}/sample-credentials-micado.yml")


#: MiCADO 0.9.x: everything at the top, ``ansible-playbook -i hosts.yml micado-master.yml``.
LAYOUT_0_9 = Layout(
    name="0.9",
    markers=("micado-master.yml", "sample-hosts.yml"),
    run_dir=".",
    playbook="micado-master.yml",
    inventory="hosts.yml",
    host="micado-target",
    credentials_dir=".",
)
#: MiCADO 0.12.x: ``cd playbook; ansible-playbook -i inventory/hosts.yml project/micado.yml``.
LAYOUT_0_12 = Layout(
    name="0.12",
    markers=("playbook/inventory/hosts.yml", "playbook/project/micado.yml"),
    run_dir="playbook",
    playbook="project/micado.yml",
    inventory="inventory/hosts.yml",
    host="micado",
    credentials_dir="playbook/project/credentials",
)
#: The known layouts, newest first.
LAYOUTS: tuple[Layout, ...] = (LAYOUT_0_12, LAYOUT_0_9)


@dataclass(frozen=True)
class PlaybookTree:
    """A folder of ansible-micado playbooks and its layout.

    Attributes:
        root: the folder holding the layout's marker files.
        layout: the detected :class:`Layout`.
    """

    root: Path
    layout: Layout


def detect_layout(folder: Path) -> PlaybookTree:
    """Find the playbook layout in ``folder`` or in its only sub-folder.

    Release tarballs hold one top folder (``ansible-micado-<version>/``), so a
    folder with exactly one sub-folder and no markers of its own is looked into.

    Args:
        folder: an unpacked tarball or a playbook folder.

    Returns:
        The tree root and its layout.

    Raises:
        InstallError: no known layout was found; the message lists what was looked for.
    """
    candidates = [folder]
    if folder.is_dir():
        entries = [entry for entry in folder.iterdir() if not entry.name.startswith(".")]
        if len(entries) == 1 and entries[0].is_dir():
            candidates.append(entries[0])
    for candidate in candidates:
        for layout in LAYOUTS:
            if all((candidate / marker).is_file() for marker in layout.markers):
                return PlaybookTree(root=candidate, layout=layout)
    wanted = "; ".join(f"MiCADO {layout.name}: {' + '.join(layout.markers)}" for layout in LAYOUTS)
    raise InstallError(f"unknown ansible-micado playbook layout in {folder}: looked for {wanted}")


class PlaybookSource:
    """Where the ansible-micado playbooks come from.

    Exactly one of the two arguments may be given; with neither, the release
    :data:`DEFAULT_MICADO_VERSION` is used.

    Args:
        playbook: a local tarball, a local folder, or an ``http(s)://`` URL of a tarball.
        micado_version: a release tag of ansible-micado, e.g. ``"v0.12.0"``
            (a missing leading ``v`` is added).

    Raises:
        InvalidArgument: both are given, the version is malformed, or ``playbook``
            is neither a URL nor an existing file or folder.
    """

    def __init__(self, playbook: str | os.PathLike[str] | None = None, *, micado_version: str | None = None):
        if playbook is not None and micado_version is not None:
            raise InvalidArgument("give either playbook= or micado_version=, not both")
        self.version: str | None = None
        self.url: str | None = None
        self.path: Path | None = None
        if playbook is None:
            version = micado_version or DEFAULT_MICADO_VERSION
            if not isinstance(version, str) or not _VERSION_RE.match(version):
                raise InvalidArgument(
                    f"micado_version={version!r} is not a release tag like {DEFAULT_MICADO_VERSION!r}"
                )
            self.version = version if version.startswith("v") else f"v{version}"
            self.url = RELEASE_URL.format(version=self.version)
        elif isinstance(playbook, str) and urlparse(playbook).scheme in ("http", "https"):
            self.url = playbook
        else:
            path = Path(playbook).expanduser()
            if not path.exists():
                raise InvalidArgument(
                    f"playbook={str(playbook)!r} is neither an http(s) URL nor an existing "
                    "tarball or folder"
                )
            self.path = path.resolve()

    def __repr__(self) -> str:
        where = self.version or self.url or str(self.path)
        return f"PlaybookSource({where!r})"

    def _cache_key(self) -> str:
        if self.version is not None:
            return self.version
        if self.url is not None:
            return "url-" + hashlib.sha256(self.url.encode()).hexdigest()[:20]
        assert self.path is not None
        digest = hashlib.sha256()
        with self.path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        return "file-" + digest.hexdigest()[:20]

    def resolve(self, *, timeout: float = 300.0, progress: ProgressCallback | bool | None = None) -> PlaybookTree:
        """Return the playbooks, downloading and unpacking them if not cached yet.

        A local folder is used where it is (:func:`prepare_workdir` copies it).

        Args:
            timeout: seconds allowed for a download.
            progress: receives ``("playbook", message)`` events.

        Returns:
            The tree in the cache (or the local folder) and its layout.

        Raises:
            InstallError: the download failed, the tarball is unreadable or unsafe,
                or the layout is unknown.
            MicadoTimeout: the download ran past ``timeout``.
        """
        report = as_callback(progress)
        if self.path is not None and self.path.is_dir():
            return detect_layout(self.path)
        cache = paths.ensure_dir(paths.playbook_cache_dir())
        key = self._cache_key()
        target = cache / key
        if target.is_dir():
            report("playbook", f"using the cached playbooks {key}")
            return detect_layout(target)
        downloaded: Path | None = None
        if self.path is not None:
            tarball = self.path
        else:
            assert self.url is not None
            report("playbook", f"downloading {self.url}")
            try:
                downloaded = archive.download(self.url, cache / f"{key}.tar.gz", timeout=timeout)
            except InstallError as exc:
                if self.version is None:
                    raise
                raise InstallError(
                    f"{exc} (is {self.version!r} an ansible-micado release tag? The newest known "
                    f"is {DEFAULT_MICADO_VERSION!r}; or pass playbook= a tarball, folder or URL)"
                ) from exc
            tarball = downloaded
        report("playbook", f"unpacking {tarball.name}")
        staging = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=cache))
        try:
            archive.safe_extract(tarball, staging)
            detect_layout(staging)  # refuse to cache something we cannot use
            try:
                staging.rename(target)
            except OSError:
                if not target.is_dir():  # not a concurrent resolve winning the race
                    raise
        finally:
            if staging.exists():
                shutil.rmtree(staging)
            if downloaded is not None:
                downloaded.unlink(missing_ok=True)
        return detect_layout(target)


@dataclass(frozen=True)
class WorkDir:
    """The per-master working copy made by :func:`prepare_workdir`.

    Attributes:
        master_id: the master it belongs to.
        path: the working folder (mode 0700).
        layout: the playbook layout.
        run_dir: the folder ``ansible-playbook`` runs in.
        playbook: the main playbook, relative to ``run_dir``.
        inventory: the inventory file.
        config: our ``ansible.cfg`` (``ANSIBLE_CONFIG``).
        web_credentials: ``credentials-micado.yml`` (mode 0600).
        cloud_credentials: ``credentials-cloud-api.yml`` (mode 0600).
        redact: secrets to mask in the log (never shown in ``repr``).
    """

    master_id: str
    path: Path
    layout: Layout
    run_dir: Path
    playbook: str
    inventory: Path
    config: Path
    web_credentials: Path
    cloud_credentials: Path
    redact: tuple[str, ...] = field(default=(), repr=False)


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 from the first byte on."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _SECRET_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _dump_yaml(data: object) -> str:
    import io

    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.default_flow_style = False
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def _web_credentials(sample: Path, user: str, password: str) -> str:
    """The ``credentials-micado.yml`` text: the sample's settings with our web user.

    The file format of ansible-micado: ``authentication: {username, password}``
    and ``tls: {provision_method: self-signed | user-supplied, cert, key}``.
    """
    from ruamel.yaml import YAML

    data: dict = {}
    if sample.is_file():
        loaded = YAML().load(sample.read_text(encoding="utf-8"))
        if isinstance(loaded, dict):
            data = loaded
    data.setdefault("tls", {"provision_method": "self-signed"})
    auth = data.get("authentication")
    if not isinstance(auth, dict):
        auth = data["authentication"] = {}
    auth["username"] = user
    auth["password"] = password
    return _dump_yaml(data)


def _ansible_cfg(work: Path, inventory: Path, become: bool) -> str:
    """Our ``ansible.cfg``: every setting that matters, none taken from the user's files."""
    return "\n".join(
        [
            "# Written by micado-client for this master; ANSIBLE_CONFIG points here so",
            "# ~/.ansible.cfg and the playbooks' own ansible.cfg do not apply.",
            "[defaults]",
            f"inventory = {inventory}",
            "host_key_checking = True",
            "retry_files_enabled = False",
            "interpreter_python = auto_silent",
            "deprecation_warnings = False",
            "nocows = True",
            f"local_tmp = {work / '.ansible' / 'tmp'}",
            "",
            "[privilege_escalation]",
            f"become = {become}",
            "become_method = sudo",
            "become_user = root",
            "",
            "[ssh_connection]",
            # Reusing one connection per host makes a few hundred tasks affordable;
            # run_playbook closes the master connection when the play ends.
            "ssh_args = -C -o ControlMaster=auto -o ControlPersist=60s",
            "pipelining = True",
            "",
        ]
    )


def prepare_workdir(
    master_id: str,
    tree: PlaybookTree,
    *,
    host: str,
    micado_user: str,
    micado_password: str,
    cloud_credentials: Path | None = None,
    ssh_user: str = "ubuntu",
    ssh_port: int = 22,
    ssh_key: Path | None = None,
    become: bool = True,
) -> WorkDir:
    """Make the working copy of the playbooks for one master.

    Any earlier working copy of the same master is replaced.

    Args:
        master_id: the master (its server id); names the folder and the log.
        tree: the playbooks, from :meth:`PlaybookSource.resolve`.
        host: the master's address.
        micado_user: the MiCADO web user to create.
        micado_password: its password (written only to a 0600 file).
        cloud_credentials: the user's ``credentials-cloud-api.yml``; default
            :func:`micado.config.paths.credentials_file`.
        ssh_user: the sudoer account on the master.
        ssh_port: the master's SSH port.
        ssh_key: the client's private key; default :func:`micado.config.paths.ssh_private_key`.
        become: run the play as root through sudo, as ansible-micado requires.

    Returns:
        The working copy.

    Raises:
        InvalidArgument: the master id, user or password is empty or malformed.
        CredentialsError: the cloud credentials file does not exist.
    """
    from micado.installer import ssh

    if not isinstance(master_id, str) or not _MASTER_ID_RE.match(master_id):
        raise InvalidArgument(f"master id {master_id!r} must be letters, digits, '.', '_' or '-'")
    for name, value in (("micado_user", micado_user), ("micado_password", micado_password)):
        if not isinstance(value, str) or not value:
            raise InvalidArgument(f"{name} must be a non-empty string")
    cloud_file = Path(cloud_credentials) if cloud_credentials is not None else paths.credentials_file()
    if not cloud_file.is_file():
        raise CredentialsError(f"cloud credentials file {cloud_file} does not exist", path=cloud_file)
    key = Path(ssh_key) if ssh_key is not None else paths.ssh_private_key()

    work = paths.work_dir(master_id)
    paths.ensure_dir(work.parent)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(mode=0o700)
    copy = work / "ansible-micado"
    shutil.copytree(tree.root, copy, symlinks=False)
    (work / ".ansible").mkdir(mode=0o700)

    layout = tree.layout
    run_dir = copy / layout.run_dir
    credentials_dir = copy / layout.credentials_dir
    credentials_dir.mkdir(parents=True, exist_ok=True)

    cloud_copy = credentials_dir / "credentials-cloud-api.yml"
    _write_private(cloud_copy, cloud_file.read_text(encoding="utf-8"))
    web = credentials_dir / "credentials-micado.yml"
    _write_private(web, _web_credentials(copy / layout.web_credentials_sample, micado_user, micado_password))

    ssh_args = ssh.ssh_options(port=ssh_port, key=key, strict=True)
    host_vars = {
        "ansible_host": host,
        "ansible_port": ssh_port,
        "ansible_user": ssh_user,
        "ansible_connection": "ssh",
        "ansible_ssh_private_key_file": str(key),
        # Ansible splits this with shlex and adds it to every ssh, scp and sftp call.
        "ansible_ssh_common_args": shlex.join(ssh_args),
    }
    inventory = run_dir / layout.inventory
    inventory.parent.mkdir(parents=True, exist_ok=True)
    _write_private(inventory, _dump_yaml({"all": {"hosts": {layout.host: host_vars}}}))

    config = work / "ansible.cfg"
    _write_private(config, _ansible_cfg(work, inventory, become))
    logger.info("prepared the MiCADO %s playbooks for master %s in %s", layout.name, master_id, work)
    return WorkDir(
        master_id=master_id,
        path=work,
        layout=layout,
        run_dir=run_dir,
        playbook=layout.playbook,
        inventory=inventory,
        config=config,
        web_credentials=web,
        cloud_credentials=cloud_copy,
        redact=(micado_password,),
    )

