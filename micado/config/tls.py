"""The user's own TLS certificate for a master (the release's ``tls: provision_method: user-supplied``).

ansible-micado takes the certificate and its key as PEM *text* in its ``security.tls``
mapping (``cert``, ``key``) and its proxy (Zorp) writes them to
``/var/lib/micado/zorp/config/ssl.pem`` and ``ssl.key`` on the master. :func:`read_tls_pair`
reads both files (bounded) and checks, before anything is made, that they are PEM, that
the key is not encrypted (the proxy cannot ask for a passphrase) and that it is the
private key of the certificate (the first certificate of the file: the server's; its
chain may follow). The key is checked with pycryptodome, imported on first use.

:func:`verified_by_system_store` then tells, once the master serves the certificate,
whether a client with ``verify=True`` accepts it (a certificate of a public CA): the
record then verifies against the system's CA store; any other certificate is pinned
(the record's ``cert_path`` is a copy of the certificates of the file).
"""

from __future__ import annotations

import os
import re
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from micado.exceptions import CredentialsError, InstallError

__all__ = ["TlsPair", "read_tls_pair", "verified_by_system_store", "MAX_PEM_BYTES"]

#: The largest certificate or key file taken (a long chain is a few KiB).
MAX_PEM_BYTES = 256 * 1024
_CERT_RE = re.compile(r"-----BEGIN CERTIFICATE-----\s.+?-----END CERTIFICATE-----", re.S)
_KEY_RE = re.compile(r"-----BEGIN ((?:RSA |EC |ENCRYPTED )?PRIVATE KEY)-----\s.+?-----END \1-----", re.S)


@dataclass(frozen=True)
class TlsPair:
    """A checked certificate and private key, as the release takes them.

    Attributes:
        cert_file: the certificate file (absolute).
        key_file: the key file (absolute).
        cert_pem: the certificate blocks of ``cert_file`` (the server's first), as text.
        key_pem: the private key block (never shown in ``repr``).
    """

    cert_file: Path
    key_file: Path
    cert_pem: str
    key_pem: str = field(repr=False)

    def security(self) -> dict[str, str]:
        """The release's ``security.tls`` mapping for this pair."""
        return {"provision_method": "user-supplied", "cert": self.cert_pem, "key": self.key_pem}


def _read(path: Path, what: str, argument: str) -> str:
    from micado.config.bounded_yaml import Refused, read_limited

    try:
        return read_limited(path, MAX_PEM_BYTES)
    except FileNotFoundError:
        raise CredentialsError(f"{argument}: the {what} file {path} does not exist", path=path) from None
    except Refused as exc:
        raise CredentialsError(f"{argument}: the {what} file {path} is refused: {exc.problem}", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not PEM text"
        raise CredentialsError(f"{argument}: cannot read the {what} file {path}: {reason}", path=path) from None


def _import_key(pem: str):  # type: ignore[no-untyped-def]  # pycryptodome's keys: RsaKey or EccKey
    from Crypto.PublicKey import ECC, RSA

    for module in (RSA, ECC):
        try:
            return module.import_key(pem)
        except (ValueError, IndexError, TypeError):
            continue
    raise ValueError("neither an RSA nor an EC key")


def read_tls_pair(cert: str | os.PathLike[str], key: str | os.PathLike[str]) -> TlsPair:
    """Read a certificate and its private key, and check they belong together.

    Args:
        cert: a PEM file holding the server's certificate first, then (optionally) its chain.
        key: a PEM file holding the certificate's unencrypted private key (RSA or EC).

    Returns:
        The checked pair.

    Raises:
        CredentialsError: a file is missing, unreadable, larger than 256 KiB or holds no
            PEM block of its kind; the key is encrypted, or is not the certificate's.
            The message names the files (never the key's content); ``.path`` is the file at fault.
    """
    cert_file, key_file = Path(cert).expanduser().absolute(), Path(key).expanduser().absolute()
    certificates = _CERT_RE.findall(_read(cert_file, "certificate", "tls_cert"))
    if not certificates:
        raise CredentialsError(f"tls_cert: {cert_file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                               path=cert_file)
    key_text = _read(key_file, "private key", "tls_key")
    keys = _KEY_RE.search(key_text)
    if keys is None:
        raise CredentialsError(f"tls_key: {key_file} holds no PEM private key (-----BEGIN PRIVATE KEY-----)",
                               path=key_file)
    if keys.group(1) == "ENCRYPTED PRIVATE KEY" or "Proc-Type: 4,ENCRYPTED" in keys.group(0):
        raise CredentialsError(f"tls_key: the private key in {key_file} is encrypted; the master's proxy needs it "
                               "unencrypted (openssl pkey -in KEY -out PLAIN.key)", path=key_file)
    try:
        public = _import_key(certificates[0])
    except ValueError:
        raise CredentialsError(f"tls_cert: the first certificate in {cert_file} is damaged or has a key type "
                               "other than RSA or EC", path=cert_file) from None
    try:
        private = _import_key(keys.group(0))
    except ValueError:
        raise CredentialsError(f"tls_key: the private key in {key_file} is damaged or is neither RSA nor EC",
                               path=key_file) from None
    if not private.has_private() or private.public_key() != public:
        raise CredentialsError(f"tls_key: {key_file} is not the private key of the certificate in {cert_file} "
                               "(its first certificate: the server's)", path=key_file)
    return TlsPair(cert_file=cert_file, key_file=key_file, cert_pem="\n".join(certificates) + "\n",
                   key_pem=keys.group(0) + "\n")


def verified_by_system_store(host: str, port: int, *, timeout: float = 10.0) -> bool:
    """Whether ``https://host:port`` presents a certificate the system's CA store accepts for ``host``.

    The CA store is the one the API client's ``verify=True`` uses (requests': its
    ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` when set, else certifi's bundle).

    Raises:
        InstallError: the address does not answer TLS at all.
    """
    import requests

    url = f"https://{host}:{port}/"
    from requests.utils import DEFAULT_CA_BUNDLE_PATH

    bundle = requests.Session().merge_environment_settings(url, {}, None, True, None)["verify"]
    context = ssl.create_default_context(cafile=bundle if isinstance(bundle, str) else DEFAULT_CA_BUNDLE_PATH)
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname=host):
            return True
    except ssl.SSLCertVerificationError:
        return False
    except (OSError, ssl.SSLError) as exc:
        raise InstallError(f"the master at {host}:{port} does not answer TLS: {exc}") from None
