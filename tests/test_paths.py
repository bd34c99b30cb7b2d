"""The MiCADO dir: created 0700; an existing folder is never chmodded, and refused if others can write to it."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from micado.config import paths
from micado.config.store import MasterStore
from micado.exceptions import InvalidArgument


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture()
def open_umask() -> Iterator[None]:
    """No umask: whatever is not 0700 comes from the code, not from the umask."""
    old = os.umask(0)
    yield
    os.umask(old)


def test_a_dir_we_create_and_its_folders_are_0700(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, open_umask: None
) -> None:
    monkeypatch.setenv(paths.ENV_DIR, str(tmp_path / "new" / "micado-cli"))
    assert paths.ensure_dir(paths.ssh_dir()) == paths.ssh_dir()
    assert mode(paths.micado_dir()) == 0o700
    assert mode(paths.ssh_dir()) == 0o700


def test_a_shared_folder_is_refused_and_left_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp
    monkeypatch.setenv(paths.ENV_DIR, str(shared))
    with pytest.raises(InvalidArgument, match=rf"MiCADO dir {shared} .* written by other users \(mode 1777\)"):
        paths.ensure_dir()
    with pytest.raises(InvalidArgument, match="set MICADO_CLI_DIR to a folder of your own"):
        MasterStore().remove("m-1")  # a write: it takes the lock in the MiCADO dir first
    assert mode(shared) == 0o1777
    assert list(shared.iterdir()) == []


def test_a_folder_others_can_read_is_used_as_it_is_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    mine.chmod(0o755)
    monkeypatch.setenv(paths.ENV_DIR, str(mine))
    with caplog.at_level(logging.WARNING, logger="micado.config.paths"):
        paths.ensure_dir(paths.certs_dir())
    assert mode(mine) == 0o755
    assert mode(paths.certs_dir()) == 0o700
    assert "can be read by other users (mode 0755)" in caplog.text


def test_a_file_in_place_of_the_dir_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "not-a-dir").write_text("")
    monkeypatch.setenv(paths.ENV_DIR, str(tmp_path / "not-a-dir"))
    with pytest.raises(InvalidArgument, match="is not a folder"):
        paths.ensure_dir()
