"""Argument checks shared by the public calls: each raises :class:`InvalidArgument` naming the argument.

They run before any request or cloud call, so bad input fails fast and locally.
"""

from __future__ import annotations

import ipaddress
import math
import os
import unicodedata
from pathlib import Path
from urllib.parse import urlsplit

from micado.exceptions import InvalidArgument


def seconds(name: str, value: object) -> float:
    """``value`` as a positive, finite number of seconds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise InvalidArgument(f"{name} must be a positive number of seconds, not {value!r}")
    return float(value)


_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(name: str, value: object) -> float:
    """``value`` as a number of seconds, zero or more: a number, a ``timedelta``, or text such as
    ``90``, ``90s``, ``30m``, ``2h``, ``1d``."""
    from datetime import timedelta

    seconds_: float | None = None
    if isinstance(value, timedelta):
        seconds_ = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds_ = float(value)
    elif isinstance(value, str):
        number, unit = value.strip().lower(), ""
        if number[-1:] in _DURATION_UNITS:
            number, unit = number[:-1].strip(), number[-1]
        try:
            seconds_ = float(number) * _DURATION_UNITS[unit] if number.replace(".", "", 1).isdigit() else None
        except ValueError:
            seconds_ = None
    if seconds_ is None or not 0 <= seconds_ < math.inf:
        raise InvalidArgument(f"{name} must be a duration such as 30m, 2h or 1d, or a number of seconds "
                              f"(zero or more), not {value!r}")
    return seconds_


def byte_count(name: str, value: object) -> int:
    """``value`` as a positive whole number of bytes."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidArgument(f"{name} must be a positive number of bytes, not {value!r}")
    return value


def sendable(name: str, value: str) -> str:
    """``value`` if it can be sent as UTF-8 (it holds no unpaired surrogate)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        bad = value[error.start : error.end]
        raise InvalidArgument(
            f"{name} cannot be sent: it holds {bad!r} at index {error.start}, "
            "an unpaired surrogate that is not valid text"
        ) from None
    return value


def port(name: str, value: object) -> int:
    """``value`` as a TCP port number."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise InvalidArgument(f"{name} must be a TCP port number (1-65535), not {value!r}")
    return value


def text(name: str, value: object) -> str:
    """``value`` as a string that is not empty or blank."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(f"{name} must be a non-empty string, not {value!r}")
    return value


def http_url(name: str, value: object, what: str, *, userinfo: bool = True, query: bool = True) -> str:
    """``value`` as an http(s) URL with a host and a valid port; ``what`` says what it should point at.

    Args:
        name: the argument, for messages.
        value: the URL.
        what: what it should be the URL of (``"Keystone v3"``).
        userinfo: accept ``user:password@`` in it (messages never show that part).
        query: accept a ``?query`` or ``#fragment``.

    Raises:
        InvalidArgument: the URL is missing, malformed, not http(s), without a host, or
            has a part refused above.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(f"{name} must be the http(s) URL of {what}, not {value!r}")
    sendable(name, value)
    parts = urlsplit(value.strip())
    shown = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()  # never a password
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise InvalidArgument(f"{name} {shown!r} is not a valid URL: it has an invalid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(f"{name} {shown!r} is not an http(s) URL of {what}")
    if not userinfo and "@" in parts.netloc:
        raise InvalidArgument(f"{name} {shown!r} must not carry a user or password")
    if not query and (parts.query or parts.fragment):
        raise InvalidArgument(f"{name} {shown!r} must not have a query (?...) or fragment (#...)")
    return value


def is_loopback_host(host: str | None) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback address (where plain http is tolerated).

    Args:
        host: a URL's host name.

    Returns:
        ``True`` for ``localhost``, ``127.0.0.0/8`` and ``::1``.
    """
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def command_word_problem(value: str) -> str | None:
    """What makes ``value`` unsafe as one word of an ``ssh`` or Ansible command line, or ``None``.

    A host, a login or a key path that begins with ``-`` would be read as an option
    (``-oProxyCommand=...``), and white space or a control character would split or end
    the word in an inventory or an option string: such a value is refused before
    anything runs, rather than failing (or waiting out a timeout) later.
    """
    if value.startswith("-"):
        return "must not begin with '-'"
    if any(ch.isspace() for ch in value):
        return "must not hold white space"
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in value):
        return "must not hold control characters"
    return None


def existing_file(name: str, value: object) -> Path:
    """``value`` as the absolute path of an existing regular file."""
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise InvalidArgument(f"{name} must be the path of a file, not {value!r}")
    path = Path(value).expanduser().absolute()
    if not path.is_file():
        what = "a folder" if path.is_dir() else "no such file"
        raise InvalidArgument(f"{name}: {path} is {what}; give the path of a file")
    return path
