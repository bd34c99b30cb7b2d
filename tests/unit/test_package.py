"""The package itself: a light import that creates nothing, configures nothing, and the public names."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import micado
from micado.exceptions import MicadoAPIError, MicadoException, api_error_class

from paths import ROOT

HEAVY = ("openstack", "novaclient", "keystoneauth1", "ansible", "Crypto", "werkzeug", "requests", "ruamel",
         "boto3", "botocore", "moto")

PROBE = """
import json, logging, sys
from micado import MicadoClient
print(json.dumps({
    "heavy": sorted({m.split('.')[0] for m in sys.modules} & set(json.loads(sys.argv[1]))),
    "root_handlers": len(logging.getLogger().handlers),
    "micado_handlers": len(logging.getLogger("micado").handlers),
}))
"""


def test_import_is_light_creates_nothing_and_configures_no_logging(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "MICADO_CLI_DIR"}
    env["HOME"] = str(home)
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(HEAVY)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    probe = json.loads(result.stdout)
    assert probe == {"heavy": [], "root_handlers": 0, "micado_handlers": 0}
    assert result.stderr == ""
    assert list(home.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]


def test_public_names():
    assert micado.__version__
    for name in micado.__all__:
        assert getattr(micado, name)
    assert issubclass(micado.ApplicationNotFound, micado.NotFound)
    assert issubclass(micado.InvalidArgument, ValueError)


def test_every_error_is_a_micado_exception_and_maps_statuses():
    for name in micado.exceptions.__all__:
        value = getattr(micado.exceptions, name)
        if isinstance(value, type):
            assert issubclass(value, MicadoException)
    assert api_error_class(400) is micado.BadRequest
    assert api_error_class(401) is micado.AuthenticationError
    assert api_error_class(404) is micado.ApplicationNotFound
    assert api_error_class(422) is micado.UnprocessableEntity
    assert api_error_class(503) is micado.ServerError
    assert api_error_class(418) is MicadoAPIError
    error = micado.BadRequest("400 Bad Request: nope", status_code=400, method="POST", url="https://h/a/")
    assert str(error) == "400: 400 Bad Request: nope (POST https://h/a/)"


def test_modules_the_published_docs_reference_exist():
    import importlib

    for name in ("micado.client", "micado.models.application"):
        assert importlib.import_module(name)


def test_the_ec2_launcher_imports_boto3_only_when_it_talks_to_the_cloud() -> None:
    probe = (
        "import json, sys\n"
        "from micado.config.credentials import EC2Auth\n"
        "from micado.launcher.ec2 import EC2Launcher\n"
        "launcher = EC2Launcher(EC2Auth('AKIAEXAMPLE', 's'), region='eu-west-1')\n"
        "repr(launcher), launcher.record_fields()\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'boto3', 'botocore', 'moto'})))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(result.stdout) == []


def test_the_package_builds_without_setuptools_warnings_and_ships_its_data(tmp_path) -> None:
    import shutil
    import zipfile

    # built from a copy: setuptools writes build/ and *.egg-info next to setup.py
    root = tmp_path / "source"
    shutil.copytree(ROOT, root, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".keystone-venv", "build", "dist", "*.egg-info", "_build", "__pycache__", ".*_cache"))
    built_before = (ROOT / "build").exists()
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", str(root), "--no-deps", "-q", "-w", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert (ROOT / "build").exists() == built_before
    assert result.returncode == 0, result.stderr
    # pip's own notes about this machine's local package folders are not the build's
    warnings = [line for line in (result.stdout + result.stderr).splitlines()
                if "warn" in line.lower() and "neither a file nor a directory" not in line]
    assert warnings == []
    (wheel,) = tmp_path.glob("micado_client-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
        metadata = next(archive.read(n).decode() for n in names if n.endswith("METADATA"))
    assert any(name.startswith("micado/testing/playbook/v0.12/") for name in names)
    assert "micado/testing/examples/stressng_nova.yaml" in names
    assert "micado = micado.cli:main" in entry_points
    assert "License-Expression: Apache-2.0" in metadata
    assert f"Version: {micado.__version__}" in metadata
