"""Which master: an id, or a beginning of one only it has; never an empty or blank value, which
would be a beginning of every id. The store's resolution, the library's calls and the command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from micado import MicadoClient
from micado.config import paths
from micado.config.record import MasterRecord
from micado.config.store import ENV_KEY, MasterStore
from micado.exceptions import InvalidArgument, MasterNotFound

BLANKS = ("", " ", "\t", "\n ")


def record(master_id: str, submitter: object | None = None) -> MasterRecord:
    """A stored master; at the submitter emulator when one is given."""
    endpoint = submitter.endpoint if submitter is not None else "https://127.0.0.5/toscasubmitter"  # type: ignore[attr-defined]
    return MasterRecord(id=master_id, ip="127.0.0.1", endpoint=endpoint, api_version="v2.0",
                        cert_path=str(submitter.cert_path) if submitter is not None else None,  # type: ignore[attr-defined]
                        micado_user=getattr(submitter, "user", "admin"),
                        micado_password=getattr(submitter, "password", "a-long-password"))


@pytest.fixture
def micado_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "micado-cli"
    monkeypatch.setenv(paths.ENV_DIR, str(directory))
    monkeypatch.delenv(ENV_KEY, raising=False)
    monkeypatch.delenv("MICADO_MASTER", raising=False)
    return directory


def micado(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real entry point, not on a terminal (nothing is asked)."""
    return subprocess.run([sys.executable, "-m", "micado", *args], env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    return result.stderr.rstrip("\n")


# --- the store: the one place an id is resolved --------------------------------------------


def test_the_store_resolves_a_unique_beginning_and_refuses_a_blank_one(micado_dir: Path) -> None:
    store = MasterStore()
    store.add(record("abc111"))
    store.add(record("abd222"))
    assert store.resolve("abc111") == "abc111"
    assert store.resolve("abc") == "abc111"
    with pytest.raises(InvalidArgument, match="'ab' is ambiguous: it begins abc111, abd222; give more of it"):
        store.resolve("ab")
    with pytest.raises(MasterNotFound, match="no master with id 'zz' .*known ids: abc111, abd222"):
        store.resolve("zz")
    for blank in (*BLANKS, None, 5):
        for call in (store.resolve, store.get, store.remove):
            with pytest.raises(InvalidArgument, match=r"master_id must be a stored master's id, not .* \(an "
                                                      "empty or blank id names no master\\)"):
                call(blank)  # type: ignore[arg-type]
    assert [r.id for r in store.list()] == ["abc111", "abd222"]


def test_attach_and_destroy_refuse_a_blank_id_with_one_master_stored(micado_dir: Path) -> None:
    MasterStore().add(record("only-one"))
    master = MicadoClient(launcher="openstack").master
    for blank in BLANKS:
        with pytest.raises(InvalidArgument, match="empty or blank id names no master"):
            master.attach(blank)
        with pytest.raises(InvalidArgument, match="empty or blank id names no master"):
            master.destroy(blank)
    assert master.id is None
    assert [m["id"] for m in master.list()] == ["only-one"]


# --- the command: every place that takes an id ------------------------------------------


def test_a_blank_id_is_a_usage_error_everywhere_and_nothing_is_touched(submitter, micado_dir: Path) -> None:
    submitter.add_application("running")
    micado_dir.mkdir(mode=0o700)
    MasterStore().add(record("abc111", submitter))
    env = {paths.ENV_DIR: str(micado_dir), "MICADO_API_ENDPOINT": ""}
    for blank in BLANKS:
        for args in (("master", "destroy", blank, "--yes"), ("master", "attach", blank), ("master", "info", blank),
                     ("app", "--master", blank, "delete", "running", "--force"), ("app", "--master", blank, "list")):
            result = micado(*args, env=env)
            assert result.returncode == 2, (args, result.stderr)
            assert one_error_line(result).startswith("micado: error: InvalidArgument: "), args
        from_env = micado("app", "delete", "running", "--force", env={**env, "MICADO_MASTER": blank})
        assert from_env.returncode == 2
        assert one_error_line(from_env) == ("micado: error: InvalidArgument: $MICADO_MASTER is empty: set it to a "
                                            "stored master's id, or unset it")
    assert [app_id for app_id in submitter.applications] == ["running"]
    assert [r.id for r in MasterStore().list()] == ["abc111"]
    # unset, the only stored master is the one meant
    assert micado("app", "list", env=env).stdout == "running\n"


def test_info_takes_the_beginnings_of_ids_destroy_takes(submitter, micado_dir: Path) -> None:
    micado_dir.mkdir(mode=0o700)
    for master_id in ("abc111", "abd222"):
        MasterStore().add(record(master_id, submitter))
    env = {paths.ENV_DIR: str(micado_dir)}
    shown = micado("--json", "master", "info", "abc", env=env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["id"] == "abc111"
    for args in (("master", "info", "ab"), ("master", "info", "ab", "--show-password")):
        ambiguous = micado(*args, env=env)
        assert ambiguous.returncode == 2
        assert one_error_line(ambiguous).endswith("'ab' is ambiguous: it begins abc111, abd222; give more of it")
    unknown = micado("master", "info", "zz", env=env)
    assert unknown.returncode == 2
    assert "MasterNotFound" in one_error_line(unknown)
