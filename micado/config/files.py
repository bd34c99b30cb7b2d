"""Writing files that may hold secrets: private from the first byte, complete or absent.

:func:`write_private` is the one way the library writes such a file (keys, credentials
copies, certificates, the store, the extra-vars file): a temporary file in the same
folder, created with its final mode (never readable by others, even for a moment),
written and flushed to disk, then renamed over the target (or, with ``exclusive``,
linked to it, so that an existing file is never replaced).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_private"]


def write_private(path: str | os.PathLike[str], data: bytes | str, *, mode: int = 0o600,
                  exclusive: bool = False) -> bool:
    """Write ``data`` to ``path`` atomically, with ``mode`` from the first byte on.

    Args:
        path: the file; its folder must exist.
        data: bytes, or text (written as UTF-8).
        mode: the file's permission bits.
        exclusive: do not replace an existing file (then nothing is written).

    Returns:
        ``True`` if the file was written, ``False`` if ``exclusive`` found it there.

    Raises:
        OSError: the folder is not writable, the disk is full...
    """
    target = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            try:
                os.link(temp, target)
            except FileExistsError:
                return False
            finally:
                os.unlink(temp)
        else:
            os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return True
