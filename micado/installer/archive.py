"""Fetching and safely unpacking playbook tarballs.

Two jobs, kept apart from the Ansible logic in :mod:`micado.installer.ansible`:

* :func:`download` streams an http(s) URL to a file within an overall deadline
  (which a slow, byte-by-byte server cannot stretch) and a size cap, through a
  temporary file renamed into place, so an interrupted download never leaves a
  half-written file under the final name.
* :func:`safe_extract` unpacks a tar archive after checking every member itself:
  absolute names, names that climb out with ``..``, names under a symbolic link of
  the archive, symbolic or hard links whose target lies outside, and device or FIFO
  files are refused, naming the member; so is a tarball over the caps on unpacked
  size, members, name length and depth (:data:`MAX_UNPACKED_BYTES` and the others),
  before it is written or read past them.
  The 0.9 client called ``extractall`` on whatever it downloaded. On top of our
  own checks, Python's ``data`` extraction filter runs as a second line of defence.
"""

from __future__ import annotations

import bz2
import gzip
import io
import logging
import lzma
import os
import posixpath
import tarfile
import tempfile
import time
import zlib
from http.client import HTTPException
from pathlib import Path
from typing import Any, BinaryIO

from micado.exceptions import InstallError, MicadoTimeout
from micado.transfer import display_url
from micado.progress import ProgressCallback, silent

__all__ = ["download", "safe_extract", "check_members", "display_url"]

logger = logging.getLogger(__name__)

#: Bytes a download may have. ansible-micado release tarballs are well under 10 MB; the
#: cap is generous for them and stops an endless answer from filling the disk.
MAX_DOWNLOAD = 200 * 1024 * 1024
#: Seconds between two progress reports of a download.
REPORT_EVERY = 2.0


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


# --- limits on what a tarball may unpack to ------------------------------------------------
# A tarball may come from the network: these caps make a hostile one (a gzip bomb, a name of
# a million folders, millions of empty members) fail at once with an InstallError instead of
# filling the disk, the memory or the CPU. The real ansible-micado releases (0.9.1-rev1,
# 0.12.0, 0.12.6) hold about 250 members and 590 KB, with names of at most 125 bytes and
# 9 levels: every cap leaves them two orders of magnitude of room or more.

#: Bytes of data a tarball may hold: its members' data, and its hard links counted as
#: copies of their target (tarfile copies when it cannot link).
MAX_UNPACKED_BYTES = 1 << 30
#: Members a tarball may hold.
MAX_MEMBERS = 50_000
#: Bytes (UTF-8) of a member's name or link target: leaves room for the cache folder under
#: Linux's 4096-byte limit on a whole path.
MAX_NAME_BYTES = 1024
#: Bytes of one part of a name (``NAME_MAX`` of the usual file systems).
MAX_PART_BYTES = 255
#: Parts (folders and file) of a member's name.
MAX_DEPTH = 64

_SHOWN_NAME = 120  # characters of a member's name quoted in a message


def _stream_limit() -> int:
    """The most bytes of tar stream an archive that :func:`check_members` accepts can span.

    The data, plus for each member its header, padding, long-name and long-link records and
    room for pax records. tarfile reads those records whole, sized by the archive itself.
    """
    return MAX_UNPACKED_BYTES + MAX_MEMBERS * (8 * tarfile.BLOCKSIZE + 2 * MAX_NAME_BYTES)


class _BoundedStream:
    """The uncompressed tar stream, refusing every read or seek that would go past ``limit``.

    Without it, a header of a few bytes can make tarfile decompress gigabytes (to skip a
    member's data) or read them into memory (a long-name record) before any member reaches
    :func:`check_members`.
    """

    def __init__(self, stream: BinaryIO | io.BufferedIOBase, limit: int, source: str) -> None:
        self._stream = stream
        self._limit = limit
        self._source = source

    def _allow(self, end: int) -> None:
        if end > self._limit:
            raise InstallError(
                f"refusing to extract {self._source}: its tar stream runs past "
                f"{self._limit} bytes (see micado.installer.archive.MAX_UNPACKED_BYTES)"
            )

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all that is left within the limit for a negative ``size``)."""
        position = self._stream.tell()
        if size < 0:
            data = self._stream.read(self._limit - position + 1)
            self._allow(position + len(data))
            return data
        self._allow(position + size)
        return self._stream.read(size)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move to ``offset`` (from the start, or from here for ``os.SEEK_CUR``)."""
        if whence == os.SEEK_CUR:
            offset, whence = self._stream.tell() + offset, os.SEEK_SET
        if whence != os.SEEK_SET:
            raise io.UnsupportedOperation("only absolute and relative seeks")
        self._allow(offset)
        return self._stream.seek(offset)

    def tell(self) -> int:
        """The position in the uncompressed stream."""
        return self._stream.tell()


def _uncompressed(raw: BinaryIO) -> BinaryIO | io.BufferedIOBase:
    """The tar stream inside ``raw``, decompressed as its first bytes say (gzip, bzip2, xz)."""
    magic = raw.read(6)
    raw.seek(0)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if magic.startswith(b"BZh"):
        return bz2.BZ2File(raw)
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw)
    return raw
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


def _shown(name: str) -> str:
    """``name`` quoted for a message, cut short if it is long."""
    return repr(name if len(name) <= _SHOWN_NAME else name[:_SHOWN_NAME] + "...")


def _check_name(name: str, what: str) -> list[str]:
    """Check the shape of a member's name; return its normalised parts.

    Raises:
        InstallError: the name is too long, too deep, absolute, or escapes the target.
    """
    # The length first: everything after it is then bounded by MAX_NAME_BYTES.
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        raise InstallError(f"refusing to extract {what}: its name is longer than {MAX_NAME_BYTES} bytes")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise InstallError(f"refusing to extract {what}: absolute path")
    # A fixed fake root makes the arithmetic purely lexical: nothing exists on disk yet,
    # so symlinks cannot be followed, and every name must already be clean on its own.
    if "\x00" in name or not _inside("/__archive_root__", name):
        raise InstallError(f"refusing to extract {what}: it escapes the target folder")
    parts = posixpath.normpath(name).split("/")
    if len(parts) > MAX_DEPTH:
        raise InstallError(f"refusing to extract {what}: it is more than {MAX_DEPTH} levels deep")
    if any(len(part.encode("utf-8", "surrogateescape")) > MAX_PART_BYTES for part in parts):
        raise InstallError(
            f"refusing to extract {what}: a part of its name is longer than {MAX_PART_BYTES} bytes"
        )
    return parts


# The names placed so far, as a tree: a folder is a dict of its entries by name, anything
# else (file, link) the member itself. Walking it costs one dict lookup per part of a name,
# so checking a whole archive takes time linear in the length of its names.
_Tree = dict[str, Any]


def _kind(member: tarfile.TarInfo) -> str:
    return "symbolic link" if member.issym() else "hard link" if member.islnk() else "file"


def _place(tree: _Tree, parts: list[str], member: tarfile.TarInfo, what: str) -> None:
    """Add ``member`` to ``tree``, refusing it under (or in the place of) another kind of entry.

    Raises:
        InstallError: ``member`` lies under a file or link of the archive (a chain of links
            each pointing inside can lead outside; under a file, extraction would fail), or
            a folder and a non-folder share its name.
    """
    if parts == ["."]:
        return  # the archive root itself ("./")
    folder = tree
    for index, part in enumerate(parts[:-1]):
        entry = folder.setdefault(part, {})
        if not isinstance(entry, dict):
            parent = "/".join(parts[: index + 1])
            raise InstallError(f"refusing to extract {what}: it goes through the {_kind(entry)} {_shown(parent)}")
        folder = entry
    existing = folder.get(parts[-1])
    if member.isdir():
        if existing is not None and not isinstance(existing, dict):
            raise InstallError(f"refusing to extract {what}: the archive also has a {_kind(existing)} of that name")
        folder.setdefault(parts[-1], {})
        return
    if isinstance(existing, dict):
        raise InstallError(f"refusing to extract {what}: the archive also has a folder of that name")
    folder[parts[-1]] = member


def _find(tree: _Tree, parts: list[str]) -> Any:
    """The entry of ``tree`` at ``parts``, ``None`` if there is none."""
    entry: Any = tree
    for part in parts:
        if not isinstance(entry, dict):
            return None
        entry = entry.get(part)
    return entry


def check_members(archive: tarfile.TarFile, *, source: str) -> list[tarfile.TarInfo]:
    """Check every member of ``archive`` before anything is written.

    Members are read one by one and each is checked before the next is read, so a
    hostile archive is refused at the first member that breaks a rule, in time linear
    in its size, and no data past :data:`MAX_UNPACKED_BYTES` is read (the records tarfile
    reads whole, such as long names, are bounded by :func:`safe_extract`).

    Args:
        archive: an open tar archive.
        source: where the archive came from, for messages.

    Returns:
        The members, all safe to extract.

    Raises:
        InstallError: the archive would unpack to more than :data:`MAX_UNPACKED_BYTES`,
            holds more than :data:`MAX_MEMBERS` members, or a member is unsafe: a name
            longer than :data:`MAX_NAME_BYTES` (a part longer than
            :data:`MAX_PART_BYTES`) or deeper than :data:`MAX_DEPTH`, absolute, escaping
            the target, lying under a file or symbolic link of the archive, a link
            pointing outside it (or, for a hard link, to anything but a file before it),
            or a device, FIFO or other special file. The message names the member.
    """
    members: list[tarfile.TarInfo] = []
    tree: _Tree = {}
    unpacked = 0
    for member in archive:  # one member at a time: each is checked before the next is read
        name = member.name
        what = f"member {_shown(name)} of {source}"
        if len(members) == MAX_MEMBERS:
            raise InstallError(f"refusing to extract {source}: it holds more than {MAX_MEMBERS} members")
        parts = _check_name(name, what)
        link = member.linkname
        if (member.issym() or member.islnk()) and len(link.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
            raise InstallError(f"refusing to extract {what}: its link target is longer than {MAX_NAME_BYTES} bytes")
        size = member.size  # tarfile writes a file's data and skips any other's: both count
        if member.issym():
            if link.startswith("/"):
                raise InstallError(f"refusing to extract {what}: symbolic link to absolute path {_shown(link)}")
            if not _inside("/__archive_root__", posixpath.join(posixpath.dirname(name), link)):
                raise InstallError(f"refusing to extract {what}: symbolic link {_shown(link)} points outside")
        elif member.islnk():
            if link.startswith("/") or not _inside("/__archive_root__", link):
                raise InstallError(f"refusing to extract {what}: hard link {_shown(link)} points outside")
            target = _find(tree, posixpath.normpath(link).split("/"))
            if not (isinstance(target, tarfile.TarInfo) and target.isfile()):
                raise InstallError(
                    f"refusing to extract {what}: hard link {_shown(link)} does not point to a "
                    "file before it in the archive"
                )
            size += target.size
        elif member.ischr() or member.isblk():
            raise InstallError(f"refusing to extract {what}: device file")
        elif member.isfifo():
            raise InstallError(f"refusing to extract {what}: FIFO")
        elif not (member.isfile() or member.isdir()):
            raise InstallError(f"refusing to extract {what}: unsupported member type {member.type!r}")
        unpacked += size
        if unpacked > MAX_UNPACKED_BYTES:
            raise InstallError(
                f"refusing to extract {source}: it unpacks to more than {MAX_UNPACKED_BYTES} bytes "
                f"(reached at member {_shown(name)})"
            )
        _place(tree, parts, member, what)
        members.append(member)
    return members


def safe_extract(archive_path: Path, dest: Path) -> Path:
    """Extract the tar archive ``archive_path`` (plain, gzip, bzip2 or xz) into the folder ``dest``.

    Every member is checked (:func:`check_members`) before the first is written, and
    the uncompressed stream is never read past what the caps allow, so a hostile
    tarball is refused without filling the disk or the memory.

    Args:
        archive_path: the tarball.
        dest: an existing, empty folder.

    Returns:
        ``dest``.

    Raises:
        InstallError: the file cannot be read or is not a complete tar archive, a member
            is unsafe or a cap is exceeded (see :func:`check_members`), or writing into
            ``dest`` failed (e.g. the disk is full). The message names the tarball.
    """
    try:
        with open(archive_path, "rb") as raw, _uncompressed(raw) as stream:
            bounded = _BoundedStream(stream, _stream_limit(), str(archive_path))
            # typeshed's fileobj protocol also wants write() and close(), which tarfile never
            # calls on a file object it was given for reading.
            with tarfile.open(fileobj=bounded, mode="r:") as archive:  # type: ignore[call-overload]
                members = check_members(archive, source=str(archive_path))
                archive.extractall(dest, members=members, filter="data")
    except tarfile.FilterError as exc:
        raise InstallError(f"refusing to extract {archive_path}: {exc}") from exc
    except EOFError as exc:
        raise InstallError(f"{archive_path} is not a complete tar archive: it is truncated") from exc
    except (tarfile.TarError, zlib.error, lzma.LZMAError) as exc:
        raise InstallError(f"{archive_path} is not a readable tar archive: {exc}") from exc
    except OSError as exc:
        if exc.errno is None:  # gzip and bzip2 tell damaged data this way
            raise InstallError(f"{archive_path} is not a readable tar archive: {exc}") from exc
        raise InstallError(f"cannot unpack {archive_path} into {dest}: {exc.strerror}") from exc
    return dest
