"""The master store, on a real filesystem, with real processes writing at once and being killed."""

from __future__ import annotations

import base64
import dataclasses
import fcntl
import json
import logging
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from micado.config import paths
from micado.config.record import SEALED
from micado.config.store import ENV_KEY, MasterRecord, MasterStore
from micado.exceptions import InvalidArgument, MasterNotFound, StoreError
from micado.progress import wait_until

PASSWORD = "web-Pa55word-d6f1"

LEGACY_0_9 = """\
masters:
  - 1b7c9e0a-5d3f-4c2e-9f51-0a2b3c4d5e6f:
      api_version: v2.0
      cert_path: /home/user/.micado-cli/1b7c9e0a-5d3f-4c2e-9f51-0a2b3c4d5e6f-ssl.pem
      endpoint: https://192.0.2.10/toscasubmitter
      ip: 192.0.2.10
      micado_user: admin
      micado_password: legacy-Secret-99
      auth_url: https://keystone.example:5000/v3
      region_name: ''
      project_id: 0123abcd
      user_domain_name: Default
  - 2c8d0f1b-6e40-4d3f-a062-1b3c4d5e6f70:
      api_version: v2.0
      cert_path: /home/user/.micado-cli/2c8d0f1b-6e40-4d3f-a062-1b3c4d5e6f70-ssl.pem
      endpoint: https://192.0.2.11/toscasubmitter
      ip: 192.0.2.11
      micado_user: admin
      micado_password: 12345
      auth_url: https://keystone.example:5000/v3
      region_name: RegionOne
      project_id:
      user_domain_name: Default
"""


@pytest.fixture()
def micado_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private MiCADO dir for the test (never the real ~/.micado-cli), no key in the environment."""
    directory = tmp_path / "micado-cli"
    monkeypatch.setenv(paths.ENV_DIR, str(directory))
    monkeypatch.delenv(ENV_KEY, raising=False)
    return directory


def record(master_id: str = "m-1", password: str = PASSWORD, **changes: object) -> MasterRecord:
    base = MasterRecord(
        id=master_id,
        ip="127.0.0.5",
        endpoint="https://127.0.0.5/toscasubmitter",
        api_version="v2.0",
        cert_path=f"/tmp/certs/{master_id}.pem",
        micado_user="admin",
        micado_password=password,
        auth_url="http://127.0.0.1:5000/v3",
        region_name="RegionOne",
        project_id="p-1",
        user_domain_name="Default",
        name=f"MiCADO-Master-{master_id}",
        extra={"floating_ip_id": "fip-1", "floating_ip_allocated": True, "ssh_port": 2222, "tags": ["a"]},
    )
    return dataclasses.replace(base, **changes)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def run_python(code: str, env_dir: Path, **popen: object) -> subprocess.Popen[str]:
    env = dict(os.environ, **{paths.ENV_DIR: str(env_dir)})
    env.pop(ENV_KEY, None)
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen,
    )


# --- round trip ------------------------------------------------------------------------------


def test_round_trip(micado_dir: Path) -> None:
    store = MasterStore()
    assert store.list() == []
    stored = store.add(record("m-1"))
    assert stored.created
    assert stored.created.endswith("Z")
    store.add(record("m-2", password="other-pw", extra={}))

    assert [r.id for r in store.list()] == ["m-1", "m-2"]
    assert store.get("m-1") == stored
    assert store.get("m-1").micado_password == PASSWORD
    assert store.get("m-2").extra == {}

    changed = store.update(dataclasses.replace(stored, ip="127.0.0.9", created=None))
    assert changed.created == stored.created
    assert MasterStore().get("m-1").ip == "127.0.0.9"  # a fresh store object reads the file

    assert store.remove("m-1").ip == "127.0.0.9"
    assert [r.id for r in store.list()] == ["m-2"]


def test_unknown_id_lists_the_known_ones(micado_dir: Path) -> None:
    store = MasterStore()
    with pytest.raises(MasterNotFound, match="the store is empty"):
        store.get("nope")
    store.add(record("m-1"))
    store.add(record("m-2"))
    for call in (store.get, store.remove):
        with pytest.raises(MasterNotFound, match=r"'nope' in .*data.yml; known ids: m-1, m-2"):
            call("nope")
    with pytest.raises(MasterNotFound):
        store.update(record("nope"))


def test_adding_an_existing_id_is_refused(micado_dir: Path) -> None:
    store = MasterStore()
    store.add(record("m-1"))
    with pytest.raises(StoreError, match="'m-1' is already recorded"):
        store.add(record("m-1", ip="10.0.0.1"))
    assert store.get("m-1").ip == "127.0.0.5"


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"id": " "}, "MasterRecord.id must be non-empty text"),
        ({"ip": None}, "MasterRecord.ip must be text"),
        ({"region_name": 3}, "region_name must be text or None"),
        ({"extra": {"when": object()}}, r"extra\['when'\] is a object"),
        ({"extra": {1: "x"}}, "key that is not text"),
        ({"extra": {"n": float("nan")}}, "not a finite number"),
    ],
)
def test_invalid_records_are_refused_before_writing(micado_dir: Path, changes: dict, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        MasterStore().add(record(**changes))
    assert not micado_dir.exists()


def test_password_is_hidden_in_repr(micado_dir: Path) -> None:
    assert PASSWORD not in repr(record())
    assert PASSWORD not in str(record())


# --- at rest -----------------------------------------------------------------------------------


def test_password_absent_from_every_file_and_modes(micado_dir: Path) -> None:
    store = MasterStore()
    store.add(record("m-1"))
    for file in micado_dir.iterdir():
        data = file.read_bytes()
        assert PASSWORD.encode() not in data, file
        assert base64.b64encode(PASSWORD.encode()) not in data, file
    assert mode(micado_dir) == 0o700
    for name in ("data.yml", "data.yml.lock", "secret.key"):
        assert mode(micado_dir / name) == 0o600, name
    document = json.loads((micado_dir / "data.yml").read_text())
    assert document["masters"][0]["micado_password"].startswith("aesgcm:")


def test_nothing_is_created_by_import_construction_or_reading(tmp_path: Path) -> None:
    directory = tmp_path / "absent"
    child = run_python(
        """
        import sys
        import micado.config.store as s, micado.config.credentials
        assert s.MasterStore().list() == []
        heavy = [m for m in sys.modules if m.split(".")[0] in ("Crypto", "ruamel")]
        assert not heavy, heavy  # pycryptodome and ruamel.yaml load only when needed
        """,
        directory,
    )
    assert child.wait(timeout=30) == 0, child.stderr.read()
    assert not directory.exists()


def test_same_password_encrypts_differently_each_time(micado_dir: Path) -> None:
    store = MasterStore()
    store.add(record("m-1"))
    store.add(record("m-2"))
    values = [m["micado_password"] for m in json.loads(paths.store_file().read_text())["masters"]]
    assert values[0] != values[1]


@pytest.mark.parametrize("encode", [bytes.hex, lambda k: base64.b64encode(k).decode()])
def test_key_from_the_environment(micado_dir: Path, monkeypatch: pytest.MonkeyPatch, encode) -> None:
    monkeypatch.setenv(ENV_KEY, encode(os.urandom(32)))
    MasterStore().add(record())
    assert not paths.secret_key_file().exists()
    assert MasterStore().get("m-1").micado_password == PASSWORD

    monkeypatch.setenv(ENV_KEY, encode(os.urandom(32)))
    with pytest.raises(StoreError, match=rf"cannot decrypt .*data.yml: it was encrypted with another key .*{ENV_KEY}"):
        MasterStore().list()
    with pytest.raises(StoreError, match="another key"):
        MasterStore().add(record("m-2"))  # a wrong key never overwrites what the right one wrote


def test_malformed_key_in_the_environment(micado_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_KEY, "not-a-key")
    with pytest.raises(StoreError, match=f"{ENV_KEY} does not hold a valid store key: it must be 32 bytes") as info:
        MasterStore().add(record())
    assert "not-a-key" not in str(info.value)


def test_lost_or_replaced_key_file(micado_dir: Path) -> None:
    MasterStore().add(record())
    key_file = paths.secret_key_file()
    key_file.unlink()
    with pytest.raises(StoreError, match="the key file is missing"):
        MasterStore().get("m-1")
    with pytest.raises(StoreError, match="the key file is missing"):
        MasterStore().add(record("m-2"))  # no new key is made over encrypted data
    key_file.write_text(base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(StoreError, match=r"another key \(key id [0-9a-f]{12}\)"):
        MasterStore().list()


def test_tampered_or_moved_ciphertext_is_damage(micado_dir: Path) -> None:
    store = MasterStore()
    store.add(record("m-1"))
    store.add(record("m-2"))
    file = paths.store_file()
    document = json.loads(file.read_text())
    masters = document["masters"]
    masters[0]["micado_password"], masters[1]["micado_password"] = (
        masters[1]["micado_password"], masters[0]["micado_password"],
    )
    file.write_text(json.dumps(document))
    assert [r.id for r in store.list()] == ["m-1", "m-2"]  # listing decrypts nothing
    with pytest.raises(StoreError, match=r"masters\[0\].micado_password fails its integrity check"):
        store.get("m-1")


def test_only_the_record_asked_for_is_decrypted(micado_dir: Path) -> None:
    store = MasterStore()
    store.add(record("m-1"))
    store.add(record("m-2", password="other-pw"))
    file = paths.store_file()
    document = json.loads(file.read_text())
    document["masters"][1]["micado_password"] = document["masters"][0]["micado_password"]  # m-2's is damaged
    file.write_text(json.dumps(document))

    listed = store.list()
    assert [(r.id, r.micado_password) for r in listed] == [("m-1", SEALED), ("m-2", SEALED)]
    assert store.get("m-1").micado_password == PASSWORD  # m-2's value is never decrypted
    with pytest.raises(StoreError, match=r"masters\[1\].micado_password fails its integrity check"):
        store.get("m-2")
    # A listed record given back keeps its stored secret, written back without decryption.
    store.update(dataclasses.replace(listed[0], ip="127.0.0.9"))
    assert (store.get("m-1").ip, store.get("m-1").micado_password) == ("127.0.0.9", PASSWORD)
    # ... also under a new id (the secret is encrypted anew, bound to that id).
    store.replace("m-1", dataclasses.replace(store.list()[0], id="m-3"))
    assert store.get("m-3").micado_password == PASSWORD
    with pytest.raises(InvalidArgument, match=r"micado_password is sealed .* MasterStore.get\(id\)"):
        store.add(dataclasses.replace(listed[0], id="m-4"))
    assert [r.id for r in store.list()] == ["m-3", "m-2"]


# --- concurrency and crashes -------------------------------------------------------------------

WRITER = """
    import json, os, sys, time
    from pathlib import Path
    from micado.config.store import MasterRecord, MasterStore
    from micado.progress import wait_until
    worker, directory = int(sys.argv[1]), Path(sys.argv[2])
    (directory / f"ready-{worker}").touch()
    wait_until(lambda: (directory / "go").exists() or None, what="go", timeout=30, interval=0.001, max_interval=0.005)
    store, times = MasterStore(), []
    for n in range(25):
        times.append(time.monotonic())
        store.add(MasterRecord(f"w{worker}-{n}", "127.0.0.1", "https://127.0.0.1/toscasubmitter", "v2.0",
                               None, "admin", f"pw-{worker}-{n}", extra={"worker": worker}))
    times.append(time.monotonic())
    print(json.dumps([times[0], times[-1]]))
"""


def test_eight_processes_adding_at_once_lose_nothing(micado_dir: Path, tmp_path: Path) -> None:
    sync = tmp_path / "sync"
    sync.mkdir()
    writers = []
    for worker in range(8):
        env = dict(os.environ, **{paths.ENV_DIR: str(micado_dir)})
        env.pop(ENV_KEY, None)
        writers.append(subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(WRITER), str(worker), str(sync)],
            env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        ))
    wait_until(lambda: len(list(sync.glob("ready-*"))) == 8 or None, what="8 writers ready", timeout=30)
    (sync / "go").touch()
    spans = []
    for writer in writers:
        out, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
        spans.append(json.loads(out))

    # They really ran at the same time: some instant lies inside every writer's span.
    assert max(start for start, _ in spans) < min(end for _, end in spans)
    records = MasterStore().list()
    assert len(records) == 200
    assert {r.id for r in records} == {f"w{w}-{n}" for w in range(8) for n in range(25)}
    store = MasterStore()
    assert all(store.get(r.id).micado_password == f"pw-{r.id[1:]}" for r in records)
    assert list(micado_dir.glob(".data.yml.*.tmp")) == []


KILLED_WRITER = """
    import os, sys, time
    from pathlib import Path
    from micado.config.store import MasterRecord, MasterStore
    marker, where = Path(sys.argv[1]), sys.argv[2]

    def stop_here():
        marker.write_text(str(os.getpid()))
        time.sleep(120)  # the test kills us here

    real_fdopen, real_replace = os.fdopen, os.replace

    class HalfWriter:
        # Writes the first half of what it is given, then stops: a writer dying mid-write.
        def __init__(self, file): self.file = file
        def __enter__(self): return self
        def __exit__(self, *exc): self.file.close()
        def __getattr__(self, name): return getattr(self.file, name)
        def write(self, data):
            self.file.write(data[: len(data) // 2]); self.file.flush(); os.fsync(self.file.fileno())
            stop_here()

    def fdopen(fd, mode="r", *args, **kwargs):
        file = real_fdopen(fd, mode, *args, **kwargs)
        return HalfWriter(file) if where == "half" and mode == "wb" else file

    def replace(src, dst):
        if where == "before-rename":
            stop_here()
        real_replace(src, dst)

    os.fdopen, os.replace = fdopen, replace
    MasterStore().add(MasterRecord("killed", "127.0.0.9", "https://127.0.0.9/toscasubmitter", "v2.0",
                                   None, "admin", "never-stored"))
"""


@pytest.mark.parametrize("where", ["half", "before-rename"])
def test_writer_killed_mid_write_leaves_the_previous_file(micado_dir: Path, tmp_path: Path, where: str) -> None:
    store = MasterStore()
    store.add(record("m-1"))
    before = paths.store_file().read_bytes()
    marker = tmp_path / "stopped"

    env = dict(os.environ, **{paths.ENV_DIR: str(micado_dir)})
    env.pop(ENV_KEY, None)
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(KILLED_WRITER), str(marker), where],
        env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        wait_until(
            lambda: marker.exists() or (child.poll() is not None and pytest.fail(child.stderr.read())) or None,
            what="the writer to stop mid-write", timeout=30,
        )
        (temp,) = micado_dir.glob(".data.yml.*.tmp")
        assert temp.stat().st_size > 0
        # The child holds the lock while it writes.
        with open(paths.store_lock_file(), "rb") as lock, pytest.raises(BlockingIOError):
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Readers take no lock and see the old content during the write...
        assert [r.id for r in store.list()] == ["m-1"]
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL

    # ...and after the crash.
    assert paths.store_file().read_bytes() == before
    assert [r.id for r in MasterStore().list()] == ["m-1"]
    # The lock died with the writer; the next write cleans up the leftover.
    store.add(record("m-2"))
    assert [r.id for r in store.list()] == ["m-1", "m-2"]
    assert list(micado_dir.glob(".data.yml.*.tmp")) == []


def test_a_store_at_another_path_keeps_its_lock_and_key_beside_it(tmp_path: Path, micado_dir: Path) -> None:
    path = tmp_path / "elsewhere" / "masters.yml"
    store = MasterStore(path)
    store.add(record())
    assert store.get("m-1").micado_password == PASSWORD
    assert {p.name for p in path.parent.iterdir()} == {"masters.yml", "masters.yml.lock", "secret.key"}
    assert mode(path.parent) == 0o700
    assert mode(path) == 0o600
    assert not micado_dir.exists()


def test_a_loose_key_file_is_used_with_a_warning(micado_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    MasterStore().add(record())
    paths.secret_key_file().chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="micado.config.store"):
        assert MasterStore().get("m-1").micado_password == PASSWORD
    assert "chmod 600" in caplog.text


def test_a_stuck_lock_holder_gives_a_clear_error(micado_dir: Path) -> None:
    MasterStore().add(record("m-1"))
    with open(paths.store_lock_file(), "rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(StoreError, match=r"held the lock .*data.yml.lock for over 0.2 s"):
            MasterStore(lock_timeout=0.2).add(record("m-2"))
        assert [r.id for r in MasterStore().list()] == ["m-1"]  # reading needs no lock


# --- the 0.9 format ----------------------------------------------------------------------------


def test_a_0_9_file_is_read_as_it_is(micado_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    micado_dir.mkdir()
    paths.store_file().write_text(LEGACY_0_9)
    with caplog.at_level(logging.WARNING, logger="micado.config.store"):
        first, second = MasterStore().list()
    assert "plaintext" in caplog.text
    assert "legacy-Secret-99" not in caplog.text
    assert first.id == "1b7c9e0a-5d3f-4c2e-9f51-0a2b3c4d5e6f"
    assert first.micado_password == SEALED  # list() never hands out secrets, in any form of the file
    first, second = (MasterStore().get(r.id) for r in (first, second))
    assert first.micado_password == "legacy-Secret-99"
    assert first.endpoint == "https://192.0.2.10/toscasubmitter"
    assert first.cert_path.endswith("-ssl.pem")
    assert (first.region_name, first.project_id, first.launcher) == (None, "0123abcd", "openstack")
    assert (second.micado_password, second.region_name, second.project_id) == ("12345", "RegionOne", None)
    assert paths.store_file().read_text() == LEGACY_0_9  # reading changes nothing
    assert not paths.secret_key_file().exists()


def test_a_0_9_file_is_rewritten_encrypted_on_the_next_write(micado_dir: Path) -> None:
    micado_dir.mkdir()
    paths.store_file().write_text(LEGACY_0_9)
    os.chmod(paths.store_file(), 0o644)
    store = MasterStore()
    store.add(record("new"))
    data = paths.store_file().read_bytes()
    assert b"legacy-Secret-99" not in data
    assert PASSWORD.encode() not in data
    assert json.loads(data)["micado_client_store"] == 2
    assert mode(paths.store_file()) == 0o600
    ids = [r.id for r in store.list()]
    assert ids == ["1b7c9e0a-5d3f-4c2e-9f51-0a2b3c4d5e6f", "2c8d0f1b-6e40-4d3f-a062-1b3c4d5e6f70", "new"]
    assert store.get(ids[0]).micado_password == "legacy-Secret-99"


# --- damaged files -------------------------------------------------------------------------------

#: A 0.9-form store of under 600 bytes whose ip expands to 9**9 values (0.9 kept any extra keys).
LAUGHS_0_9 = "masters:\n- m:\n    l0: &l0 [" + ", ".join(["lol"] * 9) + "]\n" + "".join(
    f"    {'ip:' if i == 8 else f'l{i}: &l{i}'} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9)
)


def key_only_store(micado_dir: Path) -> str:
    """Make the key (through a real write) and return the file of an empty store."""
    store = MasterStore()
    store.add(record("tmp"))
    store.remove("tmp")
    return paths.store_file().read_text()


@pytest.mark.parametrize(
    "content, problem",
    [
        ("masters: [\n  - {a: 1\n", r"not YAML \(line \d+, column \d+"),
        ("- just\n- a list\n", "expected a mapping"),
        ('{"micado_client_store": 2, "masters": {"a": 1}}', "'masters' must be a list"),
        ('{"micado_client_store": 9, "masters": []}', "newer micado-client"),
        ('{"micado_client_store": 2, "masters": [{"id": "x"}]}', "'key_id' .* is missing"),
        ('{"micado_client_store": 2, "key_id": "@", "masters": [{"id": "x", "colour": "red"}]}', "unknown field"),
        ('{"micado_client_store": 2, "key_id": "@", "masters": [{"id": "x"}]}', r"masters\[0\].ip is missing"),
        ('{"micado_client_store": 2, "key_id": "@", "masters": [{"id": "x", "ip": "i", "endpoint": "e", '
         '"api_version": "v2.0", "micado_user": "u", "micado_password": "plain", "launcher": "openstack"}]}',
         r"masters\[0\].micado_password is not an encrypted value"),
        ("masters:\n- a: {ip: 1.2.3.4, endpoint: e, micado_user: u, micado_password: p}\n"
         "- a: {ip: 1.2.3.4, endpoint: e, micado_user: u, micado_password: p}\n", "appears twice"),
        ("masters:\n- just-an-id\n", "0.9 form"),
        # Hostile: each was a raw RecursionError, ValueError or (after 19 s) MemoryError.
        ("[" * 100_000 + "]" * 100_000, "nested more than 64 levels deep"),
        ('{"micado_client_store": 2, "masters": [' * 40 + "]}" * 40, "nested more than 64 levels deep"),
        ("masters:\n" + "- " * 100 + "x\n", r"nested more than 64 levels deep \(line 2, column 127\)"),
        ('{"micado_client_store": 2, "masters": [], "n": ' + "7" * 5000 + "}", "a number has too many digits"),
        ("masters:\n- a: {ip: " + "7" * 5000 + "}\n", "cannot be converted"),
        ("masters:\n" + "- a: {ip: 1.2.3.4}\n" * 4000, r"holds more than 10000 values \(line 2001,"),
        (LAUGHS_0_9, r"aliases expand to more than 100 nodes \(line 5, column"),
    ],
)
def test_a_damaged_file_raises_and_is_kept(micado_dir: Path, content: str, problem: str) -> None:
    key_id = json.loads(key_only_store(micado_dir))["key_id"]  # the right key exists: the file is at fault
    content = content.replace('"@"', json.dumps(key_id))
    file = paths.store_file()
    file.write_text(content)
    store = MasterStore()
    for attempt in (store.list, lambda: store.get("x"), lambda: store.add(record()), lambda: store.remove("x")):
        with pytest.raises(StoreError, match=rf"master store {file} is damaged: .*{problem}.*left untouched"):
            attempt()
    assert file.read_text() == content
    assert {p.name for p in micado_dir.iterdir()} == {"data.yml", "data.yml.lock", "secret.key"}


def test_a_huge_file_is_refused_without_reading_it(micado_dir: Path) -> None:
    key_only_store(micado_dir)
    file = paths.store_file()
    with open(file, "r+b") as handle:
        handle.truncate(200 * 1024 * 1024)  # sparse: 200 MB
    started = time.monotonic()
    with pytest.raises(StoreError, match=rf"master store {file} is damaged: it is larger than 4194304 bytes"):
        MasterStore().list()
    assert time.monotonic() - started < 1
    assert file.stat().st_size == 200 * 1024 * 1024


# --- symbolic links: refused, never replaced --------------------------------------------------------


def test_a_store_that_is_a_symbolic_link_is_refused_and_kept(micado_dir: Path, tmp_path: Path) -> None:
    MasterStore().add(record("m-1"))
    real = tmp_path / "elsewhere.yml"
    paths.store_file().rename(real)
    paths.store_file().symlink_to(real)
    store = MasterStore()
    for attempt in (store.list, lambda: store.add(record("m-2")), lambda: store.remove("m-1")):
        with pytest.raises(StoreError, match=f"master store {paths.store_file()} is a symbolic link"):
            attempt()
    assert paths.store_file().is_symlink()
    assert paths.store_file().resolve() == real
    assert [r["id"] for r in json.loads(real.read_text())["masters"]] == ["m-1"]


@pytest.mark.parametrize("target", ["missing.key", "real.key"], ids=["dangling", "to-a-key"])
def test_a_key_file_that_is_a_symbolic_link_is_refused(micado_dir: Path, target: str) -> None:
    micado_dir.mkdir(mode=0o700)
    (micado_dir / "real.key").write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    paths.secret_key_file().symlink_to(micado_dir / target)
    store = MasterStore()
    with pytest.raises(StoreError, match=f"key file {paths.secret_key_file()} is a symbolic link"):
        store.add(record())  # the first write makes the key file; a link is in the way
    assert paths.secret_key_file().is_symlink()
    assert not paths.store_file().exists()


def test_an_extra_nested_too_deep_is_refused_before_writing(micado_dir: Path) -> None:
    extra: dict = {}
    for _ in range(5000):
        extra = {"a": extra}
    with pytest.raises(InvalidArgument, match="extra is nested more than 61 levels deep"):
        MasterStore().add(record(extra=extra))
    assert not paths.store_file().exists()


# --- the store identity: the random id the clouds know this MiCADO dir by ----------------------------


def test_the_store_identity_is_made_once_private_and_shared_by_parallel_programs(micado_dir: Path) -> None:
    program = ("from micado.config.store import MasterStore; import sys; "
               "sys.stdout.write(MasterStore().identity())")
    runs = [subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, text=True)
            for _ in range(6)]
    seen = {run.communicate(timeout=60)[0] for run in runs}
    assert all(run.returncode == 0 for run in runs)
    (identity,) = seen  # one identity, whichever program made the file
    assert len(identity) == 32 and int(identity, 16) >= 0
    file = paths.store_identity_file()
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert stat.S_IMODE(micado_dir.stat().st_mode) == 0o700
    assert MasterStore().identity() == identity
    assert not [p for p in micado_dir.iterdir() if p.name.endswith(".tmp")]


def test_two_micado_dirs_have_two_identities_and_a_copy_shares_it(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(paths.ENV_DIR, str(tmp_path / "a"))
    first = MasterStore().identity()
    monkeypatch.setenv(paths.ENV_DIR, str(tmp_path / "b"))
    assert MasterStore().identity() != first
    import shutil

    shutil.copytree(tmp_path / "a", tmp_path / "copy")
    monkeypatch.setenv(paths.ENV_DIR, str(tmp_path / "copy"))
    assert MasterStore().identity() == first


@pytest.mark.parametrize("target", ["missing", "real"], ids=["dangling", "to-a-file"])
def test_a_store_identity_that_is_a_symbolic_link_is_refused(micado_dir: Path, target: str) -> None:
    micado_dir.mkdir(mode=0o700)
    (micado_dir / "real").write_text("ab" * 16 + "\n")
    paths.store_identity_file().symlink_to(micado_dir / target)
    with pytest.raises(StoreError, match=f"store identity {paths.store_identity_file()} is a symbolic link"):
        MasterStore().identity()
    assert paths.store_identity_file().is_symlink()


def test_a_damaged_store_identity_is_refused_and_kept(micado_dir: Path) -> None:
    micado_dir.mkdir(mode=0o700)
    paths.store_identity_file().write_text("not an identity\n")
    with pytest.raises(StoreError, match="store identity .* is damaged: it must hold 32 hex digits"):
        MasterStore().identity()
    assert paths.store_identity_file().read_text() == "not an identity\n"
