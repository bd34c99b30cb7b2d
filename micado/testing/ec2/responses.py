"""What a client of the EC2 emulator sees: refusals instead of forwarding, and instances still booting.

The fault proxy (:mod:`.proxy`) asks these functions, with the switches of its
state (:class:`~.models.ProxyState`), whether to answer a request itself and how
to change moto's answer; they read and write bytes only, no sockets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import parse_qs, urlsplit

from micado.testing.ec2.models import EC2Faults

__all__ = ["error_document", "action_of", "refusal", "instance_ids", "report_pending"]

_CREDENTIAL_RE = re.compile(r"Credential=([^/,\s]+)/")
_INSTANCE_ID_RE = re.compile(r"<instanceId>(i-[0-9a-f]+)</instanceId>")
# An instance item's id, then its state (never crossing into the next instance's id).
_RUNNING_RE = re.compile(
    r"(<instanceId>(i-[0-9a-f]+)</instanceId>(?:(?!<instanceId>).)*?<instanceState>\s*<code>)16(</code>\s*<name>)"
    r"running(</name>)",
    re.DOTALL,
)


def error_document(code: str, message: str) -> bytes:
    """An EC2 error answer body."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
        f"<Code>{code}</Code><Message>{message}</Message></Error></Errors>"
        "<RequestID>micado-testing-fault</RequestID></Response>"
    ).encode()


def action_of(path: str, content_type: str, body: bytes) -> str:
    """The ``Action`` of an EC2 query request, from its URL or its form body ("?" if none).

    Args:
        path: the request target (path and query).
        content_type: the request's ``Content-Type``.
        body: the request body.
    """
    params = parse_qs(urlsplit(path).query)
    if "x-www-form-urlencoded" in content_type:
        params.update(parse_qs(body.decode("utf-8", "replace")))
    return (params.get("Action") or ["?"])[0]


def refusal(faults: EC2Faults, access_key_id: str, action: str, authorization: str) -> tuple[int, bytes] | None:
    """The error answer the emulator gives instead of forwarding, or None to forward.

    Args:
        faults: the switches.
        access_key_id: the only access key accepted.
        action: the request's ``Action``.
        authorization: the request's ``Authorization`` header ("" if none).

    Returns:
        The status and body of the refusal, or None.
    """
    key = _CREDENTIAL_RE.search(authorization)
    if faults.auth_failure or not key or key.group(1) != access_key_id:
        return 401, error_document("AuthFailure", "AWS was not able to validate the provided access credentials")
    if action == "RunInstances" and faults.instance_limit:
        return 400, error_document(
            "InstanceLimitExceeded", "You have requested more instances (1) than your current instance "
            "limit of 0 allows for the specified instance type.")
    if action == "AllocateAddress" and faults.address_limit:
        return 400, error_document("AddressLimitExceeded", "The maximum number of addresses has been reached.")
    return None


def instance_ids(data: bytes) -> list[str]:
    """The ids of the instances an answer (``RunInstances``, ``DescribeInstances``) shows."""
    return _INSTANCE_ID_RE.findall(data.decode("utf-8", "replace"))


def report_pending(data: bytes, faults: EC2Faults, first_seen: Mapping[str, float], now: float) -> bytes:
    """Show the running instances that are still "booting" as ``pending`` (code 0).

    Args:
        data: moto's answer.
        faults: the switches (:attr:`~.models.EC2Faults.boot_delay`, ``boot_hangs``).
        first_seen: instance id -> when an answer first showed it.
        now: the time of this answer (on the same monotonic clock).

    Returns:
        The answer, rewritten or as it was.
    """
    if not faults.boot_hangs and faults.boot_delay <= 0:
        return data

    def rewrite(match: re.Match[str]) -> str:
        if faults.boot_hangs or now - first_seen.get(match.group(2), now) < faults.boot_delay:
            return f"{match.group(1)}0{match.group(3)}pending{match.group(4)}"
        return match.group(0)

    return _RUNNING_RE.sub(rewrite, data.decode("utf-8", "replace")).encode("utf-8")
