"""Self-signed TLS certificates for the loopback emulators.

A MiCADO master serves its API behind a proxy with a self-signed certificate
(``/var/lib/micado/zorp/config/ssl.pem``: certificate and key in one PEM file).
The emulators and the test playbook make the same kind of certificate here, with
``cryptography`` (imported inside the functions, so importing this module is cheap).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from typing import Any
from pathlib import Path

__all__ = ["make_self_signed", "split_pem", "write_private_file"]


def make_self_signed(hosts: list[str], days: int = 365) -> tuple[bytes, bytes]:
    """Make a self-signed server certificate for ``hosts``.

    IP addresses go into the subjectAltName as ``IPAddress`` entries, names as
    ``DNSName`` entries (clients check the SAN, not the common name). The key is an
    ECDSA P-256 key: quick to generate and accepted by every TLS stack we use.

    Args:
        hosts: the names and IP addresses the certificate is valid for; the first one
            is also the subject's common name.
        days: how many days the certificate stays valid, from one hour ago (so clocks
            a little apart still accept it).

    Returns:
        ``(certificate PEM, unencrypted PKCS#8 private key PEM)``.

    Raises:
        ValueError: ``hosts`` is empty, or ``days`` is not positive.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    if not hosts:
        raise ValueError("make_self_signed needs at least one host name or IP address")
    if days <= 0:
        raise ValueError(f"days must be positive, not {days!r}")

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "micado-client test stack"),
            x509.NameAttribute(NameOID.COMMON_NAME, hosts[0][:64]),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(_alt_names(hosts)), critical=False)
    )
    cert = _server_extensions(builder, key.public_key()).sign(key, hashes.SHA256())
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert_pem, key_pem


def _alt_names(hosts: list[str]) -> list[Any]:
    """The subjectAltName entries: ``IPAddress`` for addresses, ``DNSName`` for names."""
    from cryptography import x509

    alt_names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    return alt_names


def _server_extensions(builder: Any, public_key: Any) -> Any:
    """A self-signed TLS server certificate's extensions, usable as its own trust anchor."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    usage = x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=False,
                          encipher_only=False, decipher_only=False)
    return (
        # A CA:TRUE self-signed certificate can be used directly as a trust anchor
        # (``verify=cert.pem``) by OpenSSL, which is how clients pin a master's cert.
        builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        # Python 3.13's default VERIFY_X509_STRICT wants the key identifiers present.
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False)
    )


def split_pem(pem: bytes, *, key_required: bool = True) -> tuple[bytes, bytes]:
    """Split a combined PEM (like a master's ``ssl.pem``) into certificate and key.

    Args:
        pem: PEM text holding at least one certificate and one private key block.
        key_required: ``False`` accepts PEM without a key (a user-supplied ``ssl.pem``
            holds only certificates); the key is then ``b""``.

    Returns:
        ``(certificate PEM blocks, private key PEM block)``, each ending with a newline.

    Raises:
        ValueError: no certificate (or, ``key_required``, no private key) block was found.
    """
    certs: list[bytes] = []
    keys: list[bytes] = []
    block: list[bytes] = []
    kind = ""
    for line in pem.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith(b"-----BEGIN "):
            kind = "key" if b"PRIVATE KEY" in stripped else "cert" if b"CERTIFICATE" in stripped else ""
            block = [line]
        elif stripped.startswith(b"-----END ") and block:
            block.append(line if line.endswith(b"\n") else line + b"\n")
            if kind == "cert":
                certs.append(b"".join(block))
            elif kind == "key":
                keys.append(b"".join(block))
            block = []
        elif block:
            block.append(line)
    if not certs:
        raise ValueError("the PEM data holds no CERTIFICATE block")
    if not keys:
        if not key_required:
            return b"".join(certs), b""
        raise ValueError("the PEM data holds no PRIVATE KEY block")
    return b"".join(certs), keys[0]


def write_private_file(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` with mode 0600, atomically (temporary file + rename).

    Args:
        path: the file to write; its directory must exist.
        data: the bytes to write.

    Returns:
        The path written, as a :class:`~pathlib.Path`.

    Raises:
        OSError: the file could not be written.
    """
    from micado.config.files import write_private

    write_private(path, data)
    return Path(path)
