"""Fetching and safely unpacking playbook tarballs.

Two jobs, kept apart from the Ansible logic in :mod:`micado.installer.ansible`:

* :func:`download` streams an http(s) URL to a file within an overall deadline
  (which a slow, byte-by-byte server cannot stretch) and a size cap, through a
  temporary file renamed into place, so an interrupted download never leaves a
  half-written file under the final name.
* :func:`safe_extract` unpacks a tar archive after checking every member itself:
  absolute names, names that climb out with ``..``, names under a symbolic link of
  the archive, symbolic or hard links whose target lies outside, and device or FIFO
  files are refused, naming the member.
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
from http.client import HTTPException
from pathlib import Path

from micado.exceptions import InstallError, MicadoTimeout
from micado.progress import ProgressCallback, silent

__all__ = ["download", "safe_extract", "check_members", "display_url"]

logger = logging.getLogger(__name__)

#: Bytes a download may have. ansible-micado release tarballs are well under 10 MB; the
#: cap is generous for them and stops an endless answer from filling the disk.
MAX_DOWNLOAD = 200 * 1024 * 1024
#: Seconds between two progress reports of a download.
REPORT_EVERY = 2.0


def display_url(url: str) -> str:
    """``url`` fit for messages and logs: no password, no query string.

    A private tarball URL may carry a password (``https://user:secret@host/...``) or
    a token in its query (``?token=...``).

    Args:
        url: any URL.

    Returns:
        The URL with the password shown as ``***`` and the query as ``?...``.
    """
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, "..." if parts.query else "", ""))


def download(
    url: str,
    dest: Path,
    *,
    timeout: float = 300.0,
    connect_timeout: float = 15.0,
    progress: ProgressCallback = silent,
    max_size: int = MAX_DOWNLOAD,
) -> Path:
    """Stream ``url`` into ``dest``, atomically.

    The body goes to a temporary file next to ``dest`` that is renamed to ``dest``
    only once complete; on any failure the temporary file is removed. Messages show
    the URL without its password or query (:func:`display_url`).

    Args:
        url: an ``http://`` or ``https://`` URL.
        dest: the file to create (its folder must exist).
        timeout: seconds for the whole download, however slowly the server sends.
        connect_timeout: seconds to connect, and the longest silence between chunks.
        progress: receives ``("playbook", "downloaded N MB ...")`` every few seconds.
        max_size: the most bytes to accept (:data:`MAX_DOWNLOAD`, 200 MiB).

    Returns:
        ``dest``.

    Raises:
        InstallError: the server could not be reached, answered with an error status,
            or sent more than ``max_size`` bytes.
        MicadoTimeout: the download took longer than ``timeout``.
    """
    import requests

    from micado import transfer

    shown = display_url(url)
    next_report = time.monotonic() + REPORT_EVERY
    received = 0

    def too_large(declared: int | None) -> InstallError:
        size = f"{declared} bytes" if declared is not None else "more"
        return InstallError(f"{shown} is over the limit of {max_size} bytes for a download ({size}); not saved")

    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, transfer.session() as http, transfer.deadline(timeout) as watch:
            try:
                with http.get(url, stream=True, timeout=(connect_timeout, connect_timeout)) as answer:
                    if answer.status_code != 200:
                        raise InstallError(
                            f"could not download the playbooks from {shown}: the server answered "
                            f"{answer.status_code} {answer.reason}"
                        )
                    for chunk in transfer.bounded_chunks(answer, max_size, too_large):
                        out.write(chunk)
                        received += len(chunk)
                        if time.monotonic() >= next_report:
                            progress("playbook", f"downloaded {received / 1e6:.1f} MB of {shown}")
                            next_report = time.monotonic() + REPORT_EVERY
            except (requests.RequestException, OSError, HTTPException) as exc:
                if watch.expired:
                    raise _download_timeout(shown, timeout, received) from exc
                message = str(exc).replace(url, shown)
                raise InstallError(f"could not download the playbooks from {shown}: {message}") from exc
            if watch.expired:  # cut off by the deadline, a partial body can look complete
                raise _download_timeout(shown, timeout, received)
        tmp.replace(dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    logger.info("downloaded %s to %s (%d bytes)", shown, dest, received)
    return dest


def _download_timeout(shown: str, timeout: float, received: int) -> MicadoTimeout:
    return MicadoTimeout(
        f"downloading {shown} took longer than {timeout:g} s ({received / 1e6:.1f} MB received)",
        what=f"download of {shown}",
        timeout=timeout,
    )


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
        InstallError: a member is absolute, escapes the target, lies under a symbolic
            link of the archive, is a link pointing outside it, or is a device, FIFO or
            other special file; the message names it.
    """
    # A fixed fake root makes the arithmetic purely lexical: nothing exists on disk yet,
    # so symlinks cannot be followed, and every name must already be clean on its own.
    root = "/__archive_root__"
    members = archive.getmembers()
    links: set[str] = set()  # symbolic links seen so far, normalised
    for member in members:
        name = member.name
        what = f"member {name!r} of {source}"
        if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
            raise InstallError(f"refusing to extract {what}: absolute path")
        if "\x00" in name or not _inside(root, name):
            raise InstallError(f"refusing to extract {what}: it escapes the target folder")
        # Each link may point inside on its own while a chain of them leads out
        # (a/l1 -> .., a/l1/l2 -> .., ...): nothing may be placed through a link.
        parts = posixpath.normpath(name).split("/")
        for end in range(1, len(parts)):
            parent = "/".join(parts[:end])
            if parent in links:
                raise InstallError(
                    f"refusing to extract {what}: it goes through the symbolic link {parent!r}"
                )
        if member.issym():
            links.add(posixpath.normpath(name))
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
