"""The checks of the credentials the releases take: vaulted files, a GCE service account, the user's TLS pair.

Real ``ansible-vault`` code encrypts and decrypts, real keys and certificates are made;
the working copy is made for real from the stand-in release (no play runs here).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from micado.config import paths
from micado.config.credentials import load_credentials, vault
from micado.config.credentials.gce import check_gce_credentials
from micado.config.tls import read_tls_pair
from micado.exceptions import CredentialsError, InvalidArgument
from micado.installer.ansible import check_settings, prepare_workdir
from micado.installer.playbooks import PlaybookSource
from micado.installer.runner import _vault_pipe
from micado.testing.playbook import build_tarball
from micado.testing.tls import make_self_signed

SECRET = "cloud-Secret-0c1d"
CREDENTIALS = f"resource:\n  - type: nova\n    auth_data:\n      username: u\n      password: {SECRET}\n"
PASSWORD = "vault-Pa55 word"


@pytest.fixture
def micado_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv(paths.ENV_DIR, str(tmp_path / "micado-cli"))
    monkeypatch.delenv(vault.ENV_VAULT_PASSWORD_FILE, raising=False)
    paths.ensure_dir()
    return tmp_path / "micado-cli"


def vaulted(path: Path, text: str, password: str = PASSWORD) -> Path:
    path.write_text(vault.encrypt(text, password))
    path.chmod(0o600)
    return path


# --- ansible-vault -------------------------------------------------------------------------

def test_a_vaulted_credentials_file_is_read_with_its_password(micado_dir: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    file = vaulted(paths.credentials_file(), CREDENTIALS)
    assert vault.is_vaulted(file.read_text()) and SECRET not in file.read_text()
    with pytest.raises(CredentialsError, match="no vault password was given") as missing:
        load_credentials("nova")
    assert missing.value.path == file and "MICADO_VAULT_PASSWORD_FILE" in str(missing.value)
    with pytest.raises(CredentialsError, match="vault password is wrong") as wrong:
        load_credentials("nova", vault_password="nope-nope")
    assert str(file) in str(wrong.value) and "nope-nope" not in str(wrong.value)
    assert load_credentials("nova", vault_password=PASSWORD).username == "u"
    # the environment names a file holding it (white space around it dropped, as ansible-vault does)
    password_file = tmp_path / "pw"
    password_file.write_text(f"  {PASSWORD}\n")
    monkeypatch.setenv(vault.ENV_VAULT_PASSWORD_FILE, str(password_file))
    assert load_credentials("nova").username == "u"
    monkeypatch.setenv(vault.ENV_VAULT_PASSWORD_FILE, str(tmp_path / "missing"))
    with pytest.raises(CredentialsError, match="does not exist"):
        load_credentials("nova")


def test_damaged_vault_data_and_unusable_passwords_are_refused(micado_dir: Path, tmp_path: Path) -> None:
    file = vaulted(paths.credentials_file(), CREDENTIALS)
    lines = file.read_text().splitlines()
    file.write_text("\n".join(lines[:1] + ["zz" + lines[1][2:]] + lines[2:]) + "\n")
    with pytest.raises(CredentialsError, match="ansible-vault and") as damaged:
        load_credentials("nova", vault_password=PASSWORD)
    assert damaged.value.path == file
    for bad in ("", " padded", "x" * 5000, 42):
        with pytest.raises(InvalidArgument, match="vault_password"):
            vault.check_vault_password(bad)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(CredentialsError, match="is empty"):
        vault.read_password_file(empty)


def test_the_password_pipe_holds_the_password_once(tmp_path: Path) -> None:
    fd = _vault_pipe(PASSWORD)
    try:
        assert os.read(fd, 100) == PASSWORD.encode() + b"\n"
        assert os.read(fd, 100) == b""  # read once, then nothing: the write end is closed
    finally:
        os.close(fd)


def test_the_working_copy_gets_the_files_still_encrypted(micado_dir: Path, tmp_path: Path) -> None:
    tree = PlaybookSource(build_tarball("0.12", tmp_path)).resolve()
    cloud = vaulted(paths.credentials_file(), CREDENTIALS)
    # a registry file whose password holds a Jinja delimiter: copied as it is (the release only copies it)
    registry = vaulted(tmp_path / "registries.yml", "configs:\n  r.io:\n    auth:\n      password: 'a{{b'\n")
    common = {"host": "127.0.0.9", "micado_user": "admin", "micado_password": "web-Pa55word", "ssh_key": tmp_path / "k"}
    with pytest.raises(CredentialsError, match="wrong"):
        prepare_workdir("srv-v", tree, registry_credentials=registry, vault_password="wrong-one", **common)
    work = prepare_workdir("srv-v", tree, registry_credentials=registry, vault_password=PASSWORD, **common)
    copied = work.cloud_credentials.read_text()
    assert copied == cloud.read_text()  # the same ciphertext: never written decrypted
    assert stat.S_IMODE(work.cloud_credentials.stat().st_mode) == 0o600
    assert work.vault_password == PASSWORD and PASSWORD not in repr(work)
    assert SECRET in work.redact and PASSWORD in work.redact
    assert not any(SECRET.encode() in path.read_bytes() for path in work.path.rglob("*") if path.is_file())
    # a cloud file the release reads with include_vars and holds a template: re-encrypted, tagged as data
    vaulted(paths.credentials_file(), CREDENTIALS.replace(SECRET, "pa{{ss"))
    work = prepare_workdir("srv-v", tree, vault_password=PASSWORD, **common)
    text = work.cloud_credentials.read_text()
    assert vault.is_vaulted(text) and "!unsafe" in vault.decrypt(text, work.cloud_credentials, PASSWORD)
    # nothing vaulted: no password goes to the play
    paths.credentials_file().write_text(CREDENTIALS)
    assert prepare_workdir("srv-v", tree, vault_password=PASSWORD, **common).vault_password is None


# --- GCE service account ----------------------------------------------------------------------

def service_account(tmp_path: Path, **changes: object) -> Path:
    from Crypto.PublicKey import RSA

    document = {"type": "service_account", "project_id": "p", "private_key_id": "k1",
                "private_key": RSA.generate(2048).export_key(pkcs=8).decode(),
                "client_email": "sa@p.iam.gserviceaccount.com"}
    document.update(changes)
    path = tmp_path / "gce.json"
    path.write_text(json.dumps({k: v for k, v in document.items() if v is not None}))
    return path


@pytest.mark.parametrize(("changes", "key", "match"), [
    ({"type": "authorized_user"}, "type", "must be 'service_account'"),
    ({"project_id": None}, "project_id", "project_id is missing"),
    ({"client_email": "nobody"}, "client_email", "e-mail"),
    ({"client_email": 7}, "client_email", "non-empty string"),
    ({"private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}, "private_key",
     "not a valid RSA private key"),
    ({"private_key": "MIIEvQIBADANBg-not-pem"}, "private_key", "must be a PEM private key"),
])
def test_a_gce_key_of_the_wrong_shape_is_refused(tmp_path: Path, changes: dict, key: str, match: str) -> None:
    path = service_account(tmp_path, **changes)
    with pytest.raises(CredentialsError, match=match) as refused:
        check_gce_credentials(path)
    assert (refused.value.path, refused.value.key) == (path, key)
    assert "MIIE" not in str(refused.value) and "AAAA" not in str(refused.value)  # never the key


def test_a_gce_key_is_checked_copied_0600_and_named_to_the_release(micado_dir: Path, tmp_path: Path) -> None:
    good = service_account(tmp_path)
    assert check_gce_credentials(good)["project_id"] == "p"
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(CredentialsError, match="JSON object"):
        check_gce_credentials(tmp_path / "list.json")
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(CredentialsError, match="is not JSON"):
        check_gce_credentials(tmp_path / "bad.json")
    with pytest.raises(CredentialsError, match="does not exist"):
        check_gce_credentials(tmp_path / "none.json")
    paths.credentials_file().write_text(CREDENTIALS)
    tree = PlaybookSource(build_tarball("0.12", tmp_path / "t")).resolve()
    work = prepare_workdir("srv-g", tree, host="127.0.0.9", micado_user="admin", micado_password="web-Pa55word",
                           ssh_key=tmp_path / "k", gce_credentials=good)
    copy = work.run_dir / "credentials" / "credentials-gce.json"
    assert json.loads(copy.read_text()) == json.loads(good.read_text())
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600 and copy in work.secret_files
    extra = work.extra_vars.read_text()
    assert "gce_cred_path" in extra and "credentials/credentials-gce.json" in extra
    assert json.loads(good.read_text())["private_key"].strip() in work.redact


def test_setting_a_path_variable_says_which_argument_to_use(tmp_path: Path) -> None:
    tree = PlaybookSource(build_tarball("0.12", tmp_path)).resolve()
    with pytest.raises(InvalidArgument, match=r"gce_credentials= \(--gce-credentials FILE\)"):
        check_settings(tree.layout, {"gce_cred_path": "/tmp/x.json"})
    with pytest.raises(InvalidArgument, match="tls_cert"):
        check_settings(tree.layout, {"micado_cred_path": "x"})


# --- the user's TLS certificate ---------------------------------------------------------------

def pem_files(tmp_path: Path, name: str) -> tuple[Path, Path]:
    cert, key = make_self_signed(["127.0.0.1"])
    (tmp_path / f"{name}.crt").write_bytes(cert)
    (tmp_path / f"{name}.key").write_bytes(key)
    return tmp_path / f"{name}.crt", tmp_path / f"{name}.key"


def test_a_tls_pair_must_match(tmp_path: Path) -> None:
    cert, key = pem_files(tmp_path, "a")
    _, other_key = pem_files(tmp_path, "b")
    pair = read_tls_pair(cert, key)
    assert pair.security()["provision_method"] == "user-supplied"
    assert pair.key_pem.strip() not in repr(pair)
    with pytest.raises(CredentialsError, match="is not the private key of the certificate") as mismatch:
        read_tls_pair(cert, other_key)
    assert mismatch.value.path == other_key and str(cert) in str(mismatch.value)
    with pytest.raises(CredentialsError, match="holds no PEM certificate"):
        read_tls_pair(key, key)
    with pytest.raises(CredentialsError, match="holds no PEM private key"):
        read_tls_pair(cert, cert)
    encrypted = tmp_path / "enc.key"
    encrypted.write_text("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n")
    with pytest.raises(CredentialsError, match="is encrypted"):
        read_tls_pair(cert, encrypted)
    with pytest.raises(CredentialsError, match="does not exist"):
        read_tls_pair(tmp_path / "none.crt", key)


def test_an_rsa_pair_and_a_chain_are_taken(tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    import datetime

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "m")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    chain_cert, _ = make_self_signed(["ca"])
    (tmp_path / "rsa.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM) + chain_cert)
    (tmp_path / "rsa.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.TraditionalOpenSSL,
                                                         serialization.NoEncryption()))
    pair = read_tls_pair(tmp_path / "rsa.crt", tmp_path / "rsa.key")
    assert pair.cert_pem.count("BEGIN CERTIFICATE") == 2 and "RSA PRIVATE KEY" in pair.key_pem
