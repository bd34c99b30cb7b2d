"""The boto3 side of the EC2 launcher: clients with bounded timeouts and retries, and error mapping.

:class:`EC2Api` holds two botocore EC2 clients of one session: one for reads
(``Describe*``), retried a bounded number of times, and one for the calls that make or
change something, never retried by botocore (a retried ``AllocateAddress`` whose first
answer was lost would allocate a second address; the launch's undo finds what a lost
answer made by its tags instead). :meth:`EC2Api.call` is the one place botocore
exceptions become :class:`~micado.exceptions.LaunchError`. boto3 is imported on the
first call only.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from micado.exceptions import LaunchError, MicadoException, server_text

if TYPE_CHECKING:
    from micado.config.credentials import EC2Auth

__all__ = ["EC2Api", "ClientSettings", "require_boto3", "BOTO3_MISSING"]

#: The one line a user without boto3 sees.
BOTO3_MISSING = "the EC2 launcher needs boto3, which is not installed: pip install 'micado-client[ec2]'"

#: Error codes meaning the cloud refused who we are (not what we asked).
AUTH_CODES = frozenset({
    "AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException",
    "IncompleteSignature", "MissingAuthenticationToken", "OptInRequired", "Blocked",
})
#: Error codes meaning an account limit or the region's capacity was reached.
LIMIT_CODES = frozenset({
    "InstanceLimitExceeded", "VcpuLimitExceeded", "AddressLimitExceeded", "InsufficientInstanceCapacity",
    "InsufficientAddressCapacity", "MaxIOPSLimitExceeded", "VolumeLimitExceeded", "RequestLimitExceeded",
    "Throttling", "ResourceLimitExceeded",
})


def require_boto3() -> None:
    """Check that boto3 can be imported, without importing it.

    Raises:
        MicadoException: boto3 is not installed; the message says which extra to install.
    """
    if "boto3" in sys.modules and sys.modules["boto3"] is None:  # an import blocked on purpose
        raise MicadoException(BOTO3_MISSING)
    try:
        spec = importlib.util.find_spec("boto3")
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise MicadoException(BOTO3_MISSING)


@dataclass(frozen=True)
class ClientSettings:
    """How the EC2 clients talk to the cloud.

    Attributes:
        connect_timeout: seconds to establish a connection.
        read_timeout: seconds to wait for (each part of) an answer.
        max_attempts: attempts of a read request (1 = no retry); writes are tried once.
        verify: ``True`` (system CAs), a CA bundle path, or ``False`` (no TLS check).
    """

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_attempts: int = 3
    verify: bool | str = True


class EC2Api:
    """botocore EC2 clients for one region and endpoint, made on first use.

    Args:
        credentials: the access key.
        region: the region name.
        endpoint_url: the EC2 endpoint; ``None`` for AWS's own endpoint of ``region``.
        settings: timeouts, retries, TLS verification.
    """

    def __init__(self, credentials: EC2Auth, region: str, endpoint_url: str | None, settings: ClientSettings) -> None:
        self.credentials = credentials
        self.region = region
        self.endpoint_url = endpoint_url
        self.settings = settings
        self._clients: dict[bool, Any] = {}

    @property
    def where(self) -> str:
        """The cloud, for messages."""
        return f"the EC2 endpoint {self.endpoint_url}" if self.endpoint_url else f"EC2 in region {self.region}"

    def login(self) -> str:
        """Who logs in, for messages: the access key id, shortened (never the secret)."""
        key = self.credentials.access_key_id
        return f"access key {key[:4]}...{key[-4:]}" if len(key) > 12 else "access key ****"

    def client(self, write: bool = False) -> Any:
        """The botocore client for reads, or (``write=True``) the one for changes."""
        if write not in self._clients:
            import boto3
            from botocore.config import Config

            from micado import __version__

            session = boto3.session.Session(
                aws_access_key_id=self.credentials.access_key_id,
                aws_secret_access_key=self.credentials.secret_access_key,
                region_name=self.region,
            )
            config = Config(
                connect_timeout=self.settings.connect_timeout,
                read_timeout=self.settings.read_timeout,
                retries={"total_max_attempts": 1 if write else self.settings.max_attempts, "mode": "standard"},
                user_agent_extra=f"micado-client/{__version__}",
            )
            self._clients[write] = session.client(
                "ec2", region_name=self.region, endpoint_url=self.endpoint_url, config=config,
                verify=self.settings.verify,
            )
        return self._clients[write]

    def call(self, doing: str, operation: str, *, write: bool = False,
             missing: Collection[str] = (), **params: Any) -> dict[str, Any] | None:
        """Call one EC2 operation; botocore errors become :class:`LaunchError`.

        Args:
            doing: what the call does, for messages ("create instance MiCADO-Master-1").
            operation: the client method (``"describe_instances"``).
            write: the call makes or changes something: it is not retried.
            missing: error codes meaning "no such thing": the call then returns ``None``.
            params: the operation's parameters.

        Returns:
            The answer, without its ``ResponseMetadata``; ``None`` for a ``missing`` code.

        Raises:
            LaunchError: the cloud refused or failed the call, or could not be reached.
        """
        try:
            answer = getattr(self.client(write), operation)(**params)
        except MicadoException:
            raise
        except Exception as exc:
            if missing and error_code(exc) in missing:
                return None
            raise self.translate(exc, doing) from None  # botocore's text is raw; ours is masked
        answer.pop("ResponseMetadata", None)
        result: dict[str, Any] = answer
        return result

    def close(self) -> None:
        """Close the clients' connections; the next call makes new clients."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def said(self, text: object) -> str:
        """The cloud's words (an error's text), fit to show: the secret key masked, controls visible."""
        return server_text(text, secrets=(self.credentials.secret_access_key,), limit=1000)

    def translate(self, exc: Exception, doing: str) -> LaunchError:
        """Turn a botocore exception into a :class:`LaunchError` that says what failed, where."""
        from botocore import exceptions as bc

        where = self.where
        if isinstance(exc, bc.ClientError):
            error: Mapping[str, Any] = exc.response.get("Error") or {}
            code = self.said(error.get("Code") or "?")
            message = self.said(error.get("Message") or exc)
            metadata: Mapping[str, Any] = exc.response.get("ResponseMetadata") or {}
            status = metadata.get("HTTPStatusCode")
            if code in AUTH_CODES or code.startswith("AuthFailure"):
                return LaunchError(
                    f"authentication failed at {where} for {self.login()}: the cloud refused the credentials "
                    f"({code}: {message}); check the ec2 entry of the credentials file and the region"
                )
            if code == "UnauthorizedOperation":
                return LaunchError(f"{self.login()} may not {doing} at {where} ({code}: {message})")
            if code in LIMIT_CODES:
                return LaunchError(f"{where} refused to {doing}: a limit of the account or region was reached "
                                   f"({code}: {message})")
            verb = "failed" if isinstance(status, int) and status >= 500 else "refused"
            return LaunchError(f"{where} {verb} to {doing}: {message} ({code}, HTTP {status})")
        if isinstance(exc, bc.ConnectTimeoutError):
            return LaunchError(f"cannot reach {where} while trying to {doing}: no connection within "
                               f"{self.settings.connect_timeout:g} s (connect_timeout)")
        if isinstance(exc, bc.ReadTimeoutError):
            return LaunchError(f"{where} did not answer within {self.settings.read_timeout:g} s while trying "
                               f"to {doing} (request_timeout); the request may have been carried out")
        if isinstance(exc, bc.SSLError):
            return LaunchError(f"TLS check failed while trying to {doing} at {where}: {self.said(exc)} "
                               "(give verify= a CA bundle, or verify=False)")
        if isinstance(exc, bc.ConnectionClosedError):
            return LaunchError(f"{where} closed the connection without answering while trying to {doing}; "
                               "the request may have been carried out")
        if isinstance(exc, (bc.EndpointConnectionError, bc.ConnectionError, bc.HTTPClientError)):
            return LaunchError(f"cannot reach {where} while trying to {doing}: {self.said(exc)}")
        if isinstance(exc, bc.BotoCoreError):
            return LaunchError(f"cannot {doing} on {where}: {self.said(exc)}")
        return LaunchError(f"unexpected {type(exc).__name__} while trying to {doing} on {where}: {self.said(exc)}")


def error_code(exc: BaseException) -> str | None:
    """The EC2 error code of a botocore ``ClientError`` (``"InvalidInstanceID.NotFound"``), else ``None``."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = (response.get("Error") or {}).get("Code")
        return str(code) if code else None
    return None
