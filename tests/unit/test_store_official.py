"""A ``data.yml`` shared with the official micado-client 0.12 (``micados:``): read, kept byte for byte.

The official client's writes are re-enacted with the YAML library and settings it uses
(``tests/support/official_client.py``), so the files are the ones it makes and reads.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import official_client as official
from micado.config import paths
from micado.config.record import IMPORTED, SEALED
from micado.config.store import MasterRecord, MasterStore
from micado.exceptions import InvalidArgument, MasterNotFound, StoreError

OURS = "web-Pa55word-d6f1"
THEIRS = ("official-Secret-1", "official-Secret-2")
IDS = ("5a1e0c2d-7f3b-4e11-9c2a-1d2e3f4a5b6c", "6b2f1d3e-8a4c-4f22-ad3b-2e3f4a5b6c7d")


@pytest.fixture()
def micado_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "micado-cli"
    directory.mkdir(mode=0o700)
    monkeypatch.setenv(paths.ENV_DIR, str(directory))
    monkeypatch.delenv("MICADO_SECRET_KEY", raising=False)
    return directory


@pytest.fixture()
def shared(micado_dir: Path) -> Path:
    """A data.yml as the official 0.12 client leaves it after two creates."""
    store_file = micado_dir / "data.yml"
    for index, (master_id, password) in enumerate(zip(IDS, THEIRS, strict=True)):
        official.official_master(store_file, master_id, f"192.0.2.{20 + index}", password=password,
                                 cert_path=str(micado_dir / f"{master_id}-ssl.pem"))
    return store_file


def ours(master_id: str = "m-1", **changes: object) -> MasterRecord:
    values: dict[str, object] = dict(
        id=master_id, ip="198.51.100.7", endpoint="https://198.51.100.7/toscasubmitter/", api_version="v2.0",
        cert_path=None, micado_user="admin", micado_password=OURS, extra={"ssh_port": 22, "ratio": 1.5},
    )
    values.update(changes)
    return MasterRecord(**values)  # type: ignore[arg-type]


def micados_part(text: str) -> str:
    """The ``micados:`` entry of a file, as text: from its key to the next top-level key (or the end)."""
    import re

    start = text.index("micados:")
    following = re.compile(r"^[^\s#]", re.MULTILINE).search(text, text.index("\n", start) + 1)
    return text[start:following.start() if following else len(text)]


def test_the_official_entries_are_listed_as_imported(shared: Path) -> None:
    store = MasterStore()
    records = store.list()
    assert [(r.id, r.state, r.launcher) for r in records] == [(IDS[0], IMPORTED, "openstack"),
                                                              (IDS[1], IMPORTED, "openstack")]
    assert records[0].ip == "192.0.2.20"
    assert records[0].endpoint == "https://192.0.2.20/toscasubmitter"
    assert records[0].micado_password == SEALED  # listing decrypts nothing, plaintext or not
    assert "official micado-client" in records[0].extra["imported_from"]
    got = store.get(IDS[1])
    assert (got.micado_user, got.micado_password, got.api_version) == ("admin", THEIRS[1], "v2.0")
    assert got.cert_path == str(shared.parent / f"{IDS[1]}-ssl.pem")
    assert store.resolve(IDS[0][:6]) == IDS[0]


def test_an_add_keeps_the_official_entries_byte_for_byte(shared: Path) -> None:
    before = shared.read_text()
    store = MasterStore()
    store.add(ours())
    after = shared.read_text()
    assert after.startswith(before)  # the official client's part, as it wrote it, first
    assert micados_part(after) == micados_part(before)
    assert OURS not in after  # ours encrypted as always; theirs stay as the official client wrote them
    assert all(password in after for password in THEIRS)
    assert [r.id for r in store.list()] == ["m-1", *IDS]
    assert store.get("m-1").micado_password == OURS
    assert store.get("m-1").extra == {"ssh_port": 22, "ratio": 1.5}
    store.add(ours("m-2"))
    store.remove("m-1")
    assert shared.read_text().startswith(before)
    store.remove("m-2")
    assert shared.read_text().startswith(before)
    assert [r.id for r in store.list()] == list(IDS)


def test_the_official_client_still_finds_its_entries_and_keeps_ours(shared: Path) -> None:
    store = MasterStore()
    store.add(ours())
    assert official.get(shared, IDS[0])["micado_password"] == THEIRS[0]  # its attach
    official.persist(shared, "7c3a2e4f", ip="192.0.2.30", endpoint="https://192.0.2.30/toscasubmitter")
    records = {r.id: r for r in store.list()}  # its rewrite kept our keys (reformatted: values equal)
    assert set(records) == {"m-1", *IDS, "7c3a2e4f"}
    assert records["7c3a2e4f"].state == IMPORTED and records["7c3a2e4f"].micado_user == ""
    assert store.get("m-1").micado_password == OURS
    assert store.get("m-1").extra == {"ssh_port": 22, "ratio": 1.5}
    before = micados_part(shared.read_text())
    store.add(ours("m-2"))  # and what it rewrote is kept byte for byte in turn
    assert micados_part(shared.read_text()) == before


def test_the_official_client_drops_our_keys_from_a_file_without_micados(micado_dir: Path) -> None:
    # What docs/changes.rst warns of: keep the two clients apart with MICADO_CLI_DIR.
    store = MasterStore()
    store.add(ours())
    official.persist(store.path, IDS[0], ip="192.0.2.20", endpoint="https://192.0.2.20/toscasubmitter")
    assert [(r.id, r.state) for r in store.list()] == [(IDS[0], IMPORTED)]


def test_imported_masters_are_never_changed_here(shared: Path) -> None:
    store = MasterStore()
    before = shared.read_bytes()
    with pytest.raises(InvalidArgument, match="official micado-client.*never changes or removes it"):
        store.remove(IDS[0])
    with pytest.raises(InvalidArgument, match="official micado-client"):
        store.update(ours(IDS[0]))
    with pytest.raises(StoreError, match="already recorded"):
        store.add(ours(IDS[1]))
    with pytest.raises(MasterNotFound, match=IDS[0]):  # the known ids include the imported ones
        store.remove("no-such-master")
    assert shared.read_bytes() == before


def test_other_programs_keys_and_comments_are_kept(micado_dir: Path) -> None:
    store_file = micado_dir / "data.yml"
    text = ("# shared by hand\nother_tool:\n  setting: [1, 2]   # theirs\n  when: 2024-05-01\n"
            f"micados:\n  - {IDS[0]}:\n      ip: 192.0.2.20\n      micado_user: admin\n"
            f"      micado_password: '{THEIRS[0]}'\n")
    store_file.write_text(text)
    store = MasterStore()
    store.add(ours())
    assert store_file.read_text().startswith(text)
    assert [r.id for r in store.list()] == ["m-1", IDS[0]]


def test_a_json_store_with_an_added_micados_key_keeps_its_values(micado_dir: Path) -> None:
    store = MasterStore()
    store.add(ours())
    document = json.loads(store.path.read_text())
    document["micados"] = [{IDS[0]: {"ip": "192.0.2.20", "micado_user": "admin", "micado_password": THEIRS[0]}}]
    store.path.write_text(json.dumps(document))  # flow style: the values are kept, not the bytes
    store.add(ours("m-2"))
    assert store.get(IDS[0]).micado_password == THEIRS[0]
    assert [r.id for r in store.list()] == ["m-1", "m-2", IDS[0]]


def test_an_empty_micados_list_is_an_empty_official_store(micado_dir: Path) -> None:
    (micado_dir / "data.yml").write_text("micados: []\n")
    store = MasterStore()
    assert store.list() == []
    store.add(ours())
    assert (micado_dir / "data.yml").read_text().startswith("micados: []\n")


@pytest.mark.parametrize("content, problem", [
    ("micados: {a: 1}\n", r"'micados' \(the official micado-client's masters\) must be a list"),
    ("micados:\n  - just-text\n", r"micados\[0\] must be a mapping of one master id"),
    ("micados:\n  - {a: {ip: 1.2.3.4}, b: {ip: 1.2.3.5}}\n", r"micados\[0\] must be a mapping of one master id"),
    ("micados:\n  - a: {endpoint: x}\n", r"micados\[0\]\.a\.ip is missing"),
    ("micados:\n  - a: {ip: {nested: 1}}\n", r"micados\[0\]\.a\.ip must be text"),
    ("micados:\n  - [a]: {ip: 1.2.3.4}\n", r"micados\[0\] has a master id that is not text"),
    ("micados:\n  - a: {ip: 1.2.3.4}\n  - a: {ip: 1.2.3.5}\n", "the master id 'a' appears twice"),
    ("micados:\n  - a: {ip: 1.2.3.4, micado_password: [x, y]}\n", r"micados\[0\]\.a\.micado_password must be text"),
    ("x: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\ny: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "micados: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n", "aliases expand to more than"),
    ("other: 1\n", "the official micado-client 0.12's 'micados"),
])
def test_a_hostile_micados_part_is_a_typed_error_and_the_file_is_kept(micado_dir: Path, content: str,
                                                                      problem: str) -> None:
    store_file = micado_dir / "data.yml"
    store_file.write_text(content)
    store = MasterStore()
    for attempt in (store.list, lambda: store.add(ours())):
        with pytest.raises(StoreError, match=problem) as caught:
            attempt()
        assert "damaged" in str(caught.value) and str(store_file) in str(caught.value)
    assert store_file.read_text() == content
