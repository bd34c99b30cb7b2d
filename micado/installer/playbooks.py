"""Where the ansible-micado playbooks come from, and how they are laid out.

:class:`PlaybookSource` ``.resolve()`` (or :func:`resolve_source`) finds the
playbooks: a MiCADO release (``micado_version``, default
:data:`DEFAULT_MICADO_VERSION`) downloaded from GitHub, or ``playbook=`` a local
tarball, a local folder or an http(s) URL. Downloads and tarballs are unpacked
safely (:mod:`micado.installer.archive`) into the cache
(:func:`micado.config.paths.playbook_cache_dir`), once per version, URL or file
content. The result is a :class:`PlaybookTree`: a folder and its :class:`Layout`.

Two layouts exist and are told apart by their files (:data:`LAYOUTS`): MiCADO 0.9
(``micado-master.yml`` at the top, host ``micado-target``) and MiCADO 0.12
(``playbook/project/micado.yml``, ``playbook/inventory/hosts.yml``, host ``micado``).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from micado.config import paths
from micado.exceptions import InstallError, InvalidArgument
from micado.installer import archive, compat
from micado.progress import ProgressCallback, as_callback

__all__ = [
    "DEFAULT_MICADO_VERSION",
    "RELEASE_URL",
    "Layout",
    "LAYOUTS",
    "PlaybookTree",
    "PlaybookSource",
    "detect_layout",
    "resolve_source",
]

#: The newest ansible-micado release (see the project's tags and changelog).
DEFAULT_MICADO_VERSION = "v0.12.0"

#: GitHub's source tarball of a tag; it unpacks to ``ansible-micado-<version without v>/``.
RELEASE_URL = "https://github.com/micado-scale/ansible-micado/archive/refs/tags/{version}.tar.gz"

_VERSION_RE = re.compile(r"^v?\d+(\.\d+)*([-.+][A-Za-z0-9]+)*$")


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
        where = self.version or (archive.display_url(self.url) if self.url else str(self.path))
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
                the layout is unknown, or the playbooks use what the installed
                ansible-core removed (:func:`micado.installer.compat.check_playbooks`).
            MicadoTimeout: the download ran past ``timeout``.
        """
        report = as_callback(progress)
        if self.path is not None and self.path.is_dir():
            return _usable(detect_layout(self.path))
        cache = paths.ensure_dir(paths.playbook_cache_dir())
        key = self._cache_key()
        target = cache / key
        if target.is_dir():
            report("playbook", f"using the cached playbooks {key}")
            return _usable(detect_layout(target))
        downloaded: Path | None = None
        if self.path is not None:
            tarball = self.path
        else:
            assert self.url is not None
            report("playbook", f"downloading {archive.display_url(self.url)}")
            try:
                downloaded = archive.download(
                    self.url, cache / f"{key}.tar.gz", timeout=timeout, progress=report
                )
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
        return _usable(detect_layout(target))


def _usable(tree: PlaybookTree) -> PlaybookTree:
    """``tree``, once :func:`micado.installer.compat.check_playbooks` accepts it."""
    compat.check_playbooks(tree.root / tree.layout.run_dir / tree.layout.playbook)
    return tree


def resolve_source(
    playbook: str | os.PathLike[str] | None = None,
    micado_version: str | None = None,
    *,
    timeout: float = 300.0,
    progress: ProgressCallback | bool | None = None,
) -> PlaybookTree:
    """Find the playbooks: ``PlaybookSource(playbook, micado_version=...).resolve()``.

    Args:
        playbook: a local tarball, a local folder or an http(s) URL; or ``None``.
        micado_version: an ansible-micado release tag; default :data:`DEFAULT_MICADO_VERSION`.
        timeout: seconds allowed for a download.
        progress: receives ``("playbook", message)`` events.

    Returns:
        The playbooks and their layout.

    Raises:
        InvalidArgument: see :class:`PlaybookSource`.
        InstallError: see :meth:`PlaybookSource.resolve`.
        MicadoTimeout: the download ran past ``timeout``.
    """
    return PlaybookSource(playbook, micado_version=micado_version).resolve(timeout=timeout, progress=progress)
