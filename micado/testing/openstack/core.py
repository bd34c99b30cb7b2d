"""What every emulated service shares: the error type, the fault switches, the caller, the clock.

No HTTP here: the per-service ``models`` modules import this one, and the HTTP front
ends (``responses``, ``urls``, :mod:`.server`) import the models, never the reverse.
"""

from __future__ import annotations

import datetime
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Protocol
from collections.abc import Callable

__all__ = ["EmulatorError", "Faults", "Caller", "Hooks", "Scheduler", "TokenValidator", "REGION",
           "SERVICE_PATHS", "now", "new_id", "unauthorized"]

#: The region of the emulated cloud.
REGION = "RegionOne"
#: Where each service is served, by catalog type (one port; the catalog lists these paths).
SERVICE_PATHS = {"identity": "/identity", "compute": "/compute/v2.1", "image": "/image", "network": "/network"}


class EmulatorError(Exception):
    """A request the emulated service refuses; becomes an HTTP error answer.

    Attributes:
        status: the HTTP status.
        message: the service's explanation.
        kind: the error type name in the service's error body (``badRequest``,
            ``IpAddressGenerationFailure``...).
    """

    def __init__(self, status: int, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind


def unauthorized(message: str = "The request you have made requires authentication.") -> EmulatorError:
    """The 401 every service answers a request without a valid token with.

    Args:
        message: the explanation.

    Returns:
        The error to raise.
    """
    return EmulatorError(401, message, "Unauthorized")


@dataclass
class Faults:
    """Fault switches: while an attribute is set, every matching request fails (reset it to stop).

    Attributes:
        auth_failure: Keystone answers every token request with 401.
        image_missing: Nova refuses to create a server because its image "no longer
            exists" (400), as when an image is deleted between lookup and boot.
        server_error: when set, booting servers end in ERROR with this fault message.
        boot_hangs: servers stay in BUILD forever.
        quota_exceeded: Nova refuses to create a server with 403 (instance quota).
        floating_ip_pool_empty: Neutron cannot allocate a floating IP (409).
        lose_create_answer: Nova creates the server but answers 500, as when an API
            node fails after accepting the request: the client cannot know the id.
        lose_floating_ip_answer: Neutron allocates the floating IP but answers 500.
        slow_answers: seconds every request waits before it is answered (a cloud
            that hangs; a client's request timeout should fire).
    """

    auth_failure: bool = False
    image_missing: bool = False
    server_error: str | None = None
    boot_hangs: bool = False
    quota_exceeded: bool = False
    floating_ip_pool_empty: bool = False
    lose_create_answer: bool = False
    lose_floating_ip_answer: bool = False
    slow_answers: float = 0.0


@dataclass(frozen=True)
class Caller:
    """Who makes a service request: the project and user of its token, as Keystone says.

    Attributes:
        project_id: the project the token is scoped to; every resource read or
            changed is this project's (or shared).
        user_id: the token's user.
    """

    project_id: str
    user_id: str


class TokenValidator(Protocol):
    """Turns a request's ``X-Auth-Token`` into its :class:`Caller` (the services' keystonemiddleware)."""

    def caller(self, token: str | None) -> Caller:
        """Validate ``token`` now.

        Args:
            token: the ``X-Auth-Token`` header, if sent.

        Returns:
            The token's project and user.

        Raises:
            EmulatorError: 401 when the token is missing, unknown, revoked or not
                scoped to a project.
        """
        ...


@dataclass
class Hooks:
    """The callbacks that tie emulated servers to something real (the local stack's VMs).

    Attributes:
        on_boot: called with the server's record when its boot finishes; raising
            puts the server in ERROR with the exception text as its fault.
        on_create: called with the new server's record before Nova answers; raising
            makes the answer a 500 although the server exists.
        on_address: called with ``(server_id, address)`` when a floating IP is
            associated, ``(server_id, None)`` when it is removed.
        on_delete: called with the server id when a server is gone.
    """

    on_boot: Callable[[dict[str, Any]], object] | None = None
    on_create: Callable[[dict[str, Any]], object] | None = None
    on_address: Callable[[str, str | None], object] | None = None
    on_delete: Callable[[str], object] | None = None


class Scheduler:
    """Timers for delayed state changes (boots, deletions), all cancelled at :meth:`cancel_all`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._timers: list[threading.Timer] = []

    def schedule(self, delay: float, action: Callable[[], None]) -> None:
        """Run ``action`` after ``delay`` seconds on a daemon timer.

        Args:
            delay: seconds to wait.
            action: what to run then.
        """
        timer = threading.Timer(delay, action)
        timer.daemon = True
        with self._lock:
            self._timers = [t for t in self._timers if t.is_alive()]
            self._timers.append(timer)
        timer.start()

    def cancel_all(self) -> None:
        """Cancel every pending action."""
        with self._lock:
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()


def now() -> str:
    """The current UTC time as OpenStack writes it (``2026-01-31T12:00:00Z``)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id() -> str:
    """A new resource id (a UUID, as Nova, Glance and Neutron use)."""
    return str(uuid.uuid4())
