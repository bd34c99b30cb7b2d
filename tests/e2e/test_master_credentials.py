"""The credentials the releases take, on the local stack: vaulted files, a GCE service account, the user's TLS pair.

Every run is real: ``ansible-vault`` encrypts the files, ``ansible-playbook`` decrypts
them with the password it gets through a pipe, the stand-in release puts what it read on
the VM (under the VM root) the way the releases do, and the API client verifies the
submitter emulator's certificate.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from micado import MicadoClient
from micado.exceptions import CredentialsError
from micado.testing import playbook as standin
from micado.testing.tls import make_self_signed

from cli_run import micado
from hosts import deploy_kwargs

CLEAN = {"servers": [], "attached_floating_ips": [], "allocated_floating_ips": []}
VAULT_PASSWORD = "correct horse battery staple"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def ansible_vault_encrypt(path: Path, password_file: Path) -> None:
    """Encrypt ``path`` in place with the real ``ansible-vault`` of this environment."""
    vault = Path(sys.executable).parent / "ansible-vault"
    subprocess.run([str(vault), "encrypt", "--vault-password-file", str(password_file), str(path)],
                   check=True, capture_output=True, timeout=120)
    assert path.read_text().startswith("$ANSIBLE_VAULT;")


def every_log(stack) -> str:
    logs = stack.micado_cli_dir / "logs"
    return "".join(p.read_text(errors="replace") for p in logs.glob("*.log")) if logs.is_dir() else ""


def files_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()] if folder.is_dir() else []


def test_create_with_a_vaulted_credentials_file(micado_stack, tmp_path):
    credentials = micado_stack.micado_cli_dir / "credentials-cloud-api.yml"
    plain = credentials.read_text()
    cloud_password = micado_stack.cloud.login["password"]
    password_file = tmp_path / "vault-pass"
    password_file.write_text(VAULT_PASSWORD + "\n")
    ansible_vault_encrypt(credentials, password_file)
    client = MicadoClient(launcher="openstack")

    # no password, a wrong one: refused naming the file, before the cloud is asked for anything
    with pytest.raises(CredentialsError, match="encrypted with ansible-vault and no vault password") as missing:
        client.master.create(**micado_stack.create_kwargs)
    assert missing.value.path == credentials
    with pytest.raises(CredentialsError, match="vault password is wrong") as wrong:
        client.master.create(vault_password="not the password", **micado_stack.create_kwargs)
    assert str(credentials) in str(wrong.value) and "not the password" not in str(wrong.value)
    assert micado_stack.cloud.leftovers() == CLEAN and client.master.list() == []

    master_id = client.master.create(vault_password=VAULT_PASSWORD, settings={"enable_occopus": True},
                                     **micado_stack.create_kwargs)
    root = micado_stack.vms.vm(master_id).root
    pushed = (root / standin.CLOUD_CREDENTIALS_FILE).read_text()
    assert cloud_password in pushed  # the release decrypted what it was handed, encrypted
    assert mode(root / standin.CLOUD_CREDENTIALS_FILE) == 0o600
    logs = every_log(micado_stack)
    assert VAULT_PASSWORD not in logs and cloud_password not in logs
    assert "--vault-password-file /dev/fd/" in logs  # a pipe, never a file
    # nothing in the MiCADO dir holds the vault password or the decrypted file
    for path in files_under(micado_stack.micado_cli_dir):
        data = path.read_bytes()
        assert VAULT_PASSWORD.encode() not in data, path
        assert path == credentials or cloud_password.encode() not in data, path
    assert "vault" not in json.dumps(client.master.store.get(master_id).extra)  # never recorded

    # day 2: the CLI with --vault-password-file, and the environment variable
    before = len((root / standin.UPDATE_AUTH_LOG).read_text().splitlines())
    result = micado("--json", "master", "update-auth", "--vault-password-file", str(password_file))
    assert result.returncode == 0, result.stderr
    result = micado("--json", "master", "update-auth", env={"MICADO_VAULT_PASSWORD_FILE": str(tmp_path / "none")})
    assert result.returncode != 0 and "vault password file" in result.stderr and "does not exist" in result.stderr
    with pytest.raises(CredentialsError, match="vault password is wrong"):
        client.master.update_auth(vault_password="still not it")
    assert len((root / standin.UPDATE_AUTH_LOG).read_text().splitlines()) == before + 1
    settings = client.master.reconfigure({"web_session_timeout": 900}, vault_password=VAULT_PASSWORD)
    assert settings["web_session_timeout"] == 900
    client.master.destroy()
    assert micado_stack.cloud.leftovers() == CLEAN
    assert credentials.read_text().startswith("$ANSIBLE_VAULT;")  # the user's file, untouched
    assert plain != credentials.read_text()


def gce_key(tmp_path: Path) -> Path:
    from Crypto.PublicKey import RSA

    key = RSA.generate(2048).export_key(pkcs=8).decode()
    path = tmp_path / "gce-sa.json"
    path.write_text(json.dumps({"type": "service_account", "project_id": "micado-tests",
                                "private_key_id": "0123abcd", "private_key": key,
                                "client_email": "micado@micado-tests.iam.gserviceaccount.com",
                                "client_id": "1234567890"}))
    path.chmod(0o600)
    return path




def test_deploy_with_own_certificate_and_gce_credentials(micado_stack, host, user_key, tmp_path):
    cert_pem, key_pem = make_self_signed([host])
    cert, key = tmp_path / "master.crt", tmp_path / "master.key"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    key.chmod(0o600)
    gce = gce_key(tmp_path)
    private_key = json.loads(gce.read_text())["private_key"]
    client = MicadoClient(launcher="openstack")
    # a key that is not the certificate's: refused before the host is touched
    other = tmp_path / "other.key"
    other.write_bytes(make_self_signed([host])[1])
    with pytest.raises(CredentialsError, match="not the private key of the certificate") as mismatch:
        client.master.deploy(host=host, tls_cert=cert, tls_key=other, **deploy_kwargs(micado_stack, user_key))
    assert mismatch.value.path == other
    assert client.master.list() == []

    master_id = client.master.deploy(host=host, tls_cert=cert, tls_key=key, gce_credentials=gce,
                                     settings={"enable_occopus": True}, **deploy_kwargs(micado_stack, user_key))
    root = micado_stack.vms.vm("my-own-host").root
    assert (root / standin.CERT_FILE).read_bytes() == cert_pem and mode(root / standin.CERT_FILE) == 0o644
    assert (root / standin.KEY_FILE).read_bytes() == key_pem and mode(root / standin.KEY_FILE) == 0o600
    pushed = json.loads((root / standin.GCE_CREDENTIALS_FILE).read_text())
    assert pushed["client_email"] == "micado@micado-tests.iam.gserviceaccount.com"
    assert mode(root / standin.GCE_CREDENTIALS_FILE) == 0o600
    assert private_key not in every_log(micado_stack) and key_pem.decode() not in every_log(micado_stack)
    # the record pins the given certificate, and the API client verifies the master with it
    record = client.master.store.get(master_id)
    assert Path(record.cert_path).read_bytes().strip() == cert_pem.strip()
    assert record.extra["tls"] == {"provision_method": "user-supplied", "cert": str(cert), "key": str(key),
                                   "verify": "pinned"}
    assert record.extra["gce_credentials"] == str(gce)
    assert client.applications.list() == []
    # a reconfigure hands the same pair over again: the master keeps serving it
    client.master.reconfigure({"web_session_timeout": 900})
    assert (root / standin.CERT_FILE).read_bytes() == cert_pem
    assert client.applications.list() == []
    # nothing of the pair or the GCE key stays in the MiCADO dir but the pinned certificate
    for path in files_under(micado_stack.micado_cli_dir):
        data = path.read_bytes()
        assert key_pem not in data and private_key.encode() not in data, path
    client.master.destroy()


def test_cli_deploy_with_a_public_certificate_verifies_against_the_ca_store(micado_stack, host, user_key,
                                                                               tmp_path):
    cert_pem, key_pem = make_self_signed([host])
    cert, key = tmp_path / "master.crt", tmp_path / "master.key"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    # the CA store requests uses with verify=True: a bundle that holds this certificate makes it "public"
    bundle = tmp_path / "ca-bundle.pem"
    bundle.write_bytes(cert_pem)
    env = {"REQUESTS_CA_BUNDLE": str(bundle), "CURL_CA_BUNDLE": str(bundle)}
    kwargs = deploy_kwargs(micado_stack, user_key)
    common = ["--json", "master", "deploy", "--host", host, "--ssh-key", str(user_key),
              "--ssh-user", kwargs["ssh_user"], "--ssh-port", str(kwargs["ssh_port"]),
              "--api-port", str(kwargs["api_port"]), "--remote-cert-path", kwargs["remote_cert_path"]]
    refused = micado(*common, "--tls-cert", str(cert), env=env)
    assert refused.returncode != 0 and "give tls_cert and tls_key together" in refused.stderr
    result = micado(*common, "--tls-cert", str(cert), "--tls-key", str(key), env=env)
    assert result.returncode == 0, result.stderr
    master_id = json.loads(result.stdout)["id"]
    record = MicadoClient(launcher="openstack").master.store.get(master_id)
    assert record.cert_path is None and record.extra["tls"]["verify"] == "system"
    listed = micado("--json", "app", "--master", master_id, "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert key_pem.decode() not in result.stdout + result.stderr
    assert micado("master", "destroy", master_id, "--yes", env=env).returncode == 0
