"""Fetching and safely unpacking playbook tarballs.

Two jobs, kept apart from the Ansible logic in :mod:`micado.installer.ansible`:

* :func:`download` streams an http(s) URL to a file with timeouts and an overall
  deadline, through a temporary file renamed into place, so an interrupted
  download never leaves a half-written file under the final name.
* :func:`safe_extract` unpacks a tar archive after checking every member itself:
  absolute names, names that climb out with ``..``, symbolic or hard links whose
  target lies outside, and device or FIFO files are refused, naming the member.
  The 0.9 client called ``extractall`` on whatever it downloaded. On top of our
  own checks, Python's ``data`` extraction filter runs as a second line of defence.
"""

from __future__ import annotations

import logging
import os
import posixpath
import tarfile
import tempfile
import time
from pathlib import Path

from micado.exceptions import InstallError, MicadoTimeout

__all__ = ["download", "safe_extract", "check_members"]

logger = logging.getLogger(__name__)

#: Bytes read per chunk while streaming a download.
CHUNK_SIZE = 1 << 16


def download(url: str, dest: Path, *, timeout: float = 300.0, connect_timeout: float = 15.0) -> Path:
    """Stream ``url`` into ``dest``, atomically.

    The body goes to a temporary file next to ``dest`` that is renamed to ``dest``
    only once complete; on any failure the temporary file is removed.

    Args:
        url: an ``http://`` or ``https://`` URL.
        dest: the file to create (its folder must exist).
        timeout: seconds for the whole download.
        connect_timeout: seconds to connect, and the longest silence between chunks.

    Returns:
        ``dest``.

    Raises:
        InstallError: the server could not be reached or answered with an error status.
        MicadoTimeout: the download took longer than ``timeout``.
    """
    import requests

    deadline = time.monotonic() + timeout
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with requests.get(url, stream=True, timeout=(connect_timeout, connect_timeout)) as answer:
                    if answer.status_code != 200:
                        raise InstallError(
                            f"could not download the playbooks from {url}: the server answered "
                            f"{answer.status_code} {answer.reason}"
                        )
                    for chunk in answer.iter_content(CHUNK_SIZE):
                        out.write(chunk)
                        if time.monotonic() > deadline:
                            raise MicadoTimeout(
                                f"downloading {url} took longer than {timeout:g} s",
                                what=f"download of {url}",
                                timeout=timeout,
                            )
            except requests.RequestException as exc:
                raise InstallError(f"could not download the playbooks from {url}: {exc}") from exc
        tmp.replace(dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    logger.info("downloaded %s to %s", url, dest)
    return dest


def _inside(root: str, path: str) -> bool:
    """Whether normalised POSIX ``path`` (relative to the archive root) stays inside it."""
    joined = posixpath.normpath(posixpath.join(root, path))
    return joined == root or joined.startswith(root + "/")


def check_members(archive: tarfile.TarFile, *, source: str) -> list[tarfile.TarInfo]:
    """Check every member of ``archive`` before anything is written.

    Args:
        archive: an open tar archive.
        source: where the archive came from, for messages.

    Returns:
        The members, all safe to extract.

    Raises:
        InstallError: a member is absolute, escapes the target, is a link pointing
            outside it, or is a device, FIFO or other special file; the message names it.
    """
    # A fixed fake root makes the arithmetic purely lexical: nothing exists on disk yet,
    # so symlinks cannot be followed, and every name must already be clean on its own.
    root = "/__archive_root__"
    members = archive.getmembers()
    for member in members:
        name = member.name
        what = f"member {name!r} of {source}"
        if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
            raise InstallError(f"refusing to extract {what}: absolute path")
        if "\x00" in name or not _inside(root, name):
            raise InstallError(f"refusing to extract {what}: it escapes the target folder")
        if member.issym():
            link = member.linkname
            if link.startswith("/"):
                raise InstallError(f"refusing to extract {what}: symbolic link to absolute path {link!r}")
            if not _inside(root, posixpath.join(posixpath.dirname(name), link)):
                raise InstallError(f"refusing to extract {what}: symbolic link {link!r} points outside")
        elif member.islnk():
            link = member.linkname
            if link.startswith("/") or not _inside(root, link):
                raise InstallError(f"refusing to extract {what}: hard link {link!r} points outside")
        elif member.ischr() or member.isblk():
            raise InstallError(f"refusing to extract {what}: device file")
        elif member.isfifo():
            raise InstallError(f"refusing to extract {what}: FIFO")
        elif not (member.isfile() or member.isdir()):
            raise InstallError(f"refusing to extract {what}: unsupported member type {member.type!r}")
    return members


def safe_extract(archive_path: Path, dest: Path) -> Path:
    """Extract the tar archive ``archive_path`` (any compression) into the folder ``dest``.

    Args:
        archive_path: the tarball.
        dest: an existing, empty folder.

    Returns:
        ``dest``.

    Raises:
        InstallError: the file is not a readable tar archive, or a member is unsafe
            (see :func:`check_members`).
    """
    try:
        with tarfile.open(archive_path, mode="r:*") as archive:
            members = check_members(archive, source=str(archive_path))
            try:
                archive.extractall(dest, members=members, filter="data")
            except tarfile.FilterError as exc:
                raise InstallError(f"refusing to extract {archive_path}: {exc}") from exc
    except tarfile.ReadError as exc:
        raise InstallError(f"{archive_path} is not a readable tar archive: {exc}") from exc
    return dest
