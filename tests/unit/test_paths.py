"""The MiCADO dir: created 0700; an existing folder is never chmodded, and refused if others can write to it."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
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


# --- a MiCADO dir that cannot be used: one line, the path and the OS's reason ---------------


def micado(*args: str, directory: Path | str) -> subprocess.CompletedProcess[str]:
    """The real entry point with ``directory`` as the MiCADO dir."""
    env = {**os.environ, paths.ENV_DIR: str(directory), "MICADO_MASTER": "x", "MICADO_API_ENDPOINT": ""}
    return subprocess.run([sys.executable, "-m", "micado", *args], env=env, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    return result.stderr.rstrip("\n")


@contextmanager
def tmpfs(where: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted at ``where`` with ``options`` (``ro``, ``size=16k``); skips the test where
    mounting is not allowed (a read-only folder will not do: root ignores permission bits)."""
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"{options},mode=0700", "tmpfs", str(where)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'mount failed'}): "
                    "a read-only or full file system cannot be made without one")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_new_dir_on_a_read_only_file_system_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with tmpfs(tmp_path / "ro", "ro") as read_only:
        new = read_only / "micado-cli"
        monkeypatch.setenv(paths.ENV_DIR, str(new))
        expected = (f"the MiCADO dir {new} ($MICADO_CLI_DIR, default ~/.micado-cli) cannot be used: cannot "
                    f"create {new}: Read-only file system (EROFS); set MICADO_CLI_DIR to a folder you can write")
        with pytest.raises(InvalidArgument) as caught:
            paths.ensure_dir(paths.ssh_dir())
        assert str(caught.value) == expected
        from micado.config.credentials import write_credentials_template
        from micado.installer.ssh import ensure_keypair

        for write in (write_credentials_template, ensure_keypair, lambda: MasterStore().remove("m-1")):
            with pytest.raises(InvalidArgument, match="Read-only file system"):
                write()
        result = micado("init", directory=new)
        assert result.returncode == 2, result.stderr
        assert one_line(result) == f"micado: error: InvalidArgument: {expected}"
        # the dir itself there (read-only): the template cannot be written, and init says so
        result = micado("init", directory=read_only)
        assert result.returncode == 2
        assert one_line(result) == ("micado: error: CredentialsError: cannot write the credentials template "
                                    f"{read_only}/credentials-cloud-api.yml: Read-only file system (EROFS)")


def test_init_on_a_full_disk_says_the_disk_is_full(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "full", "size=16k") as full:
        with open(full / "filler", "wb", buffering=0) as filler:
            with pytest.raises(OSError):
                while True:
                    filler.write(b"\0" * 4096)
        result = micado("init", directory=full / "micado-cli")
        assert result.returncode == 2
        assert one_line(result) == ("micado: error: CredentialsError: cannot write the credentials template "
                                    f"{full}/micado-cli/credentials-cloud-api.yml: No space left on device (ENOSPC)")
        assert not (full / "micado-cli" / "credentials-cloud-api.yml").exists()


def test_a_dir_name_too_long_to_exist_is_one_line_everywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    long = tmp_path / ("d" * 300)
    monkeypatch.setenv(paths.ENV_DIR, str(long))
    with pytest.raises(InvalidArgument, match=r"is too long a path \(a name in it may have 255 bytes"):
        MasterStore().list()
    with pytest.raises(InvalidArgument, match="set MICADO_CLI_DIR to a shorter one"):
        paths.ensure_dir()
    for args in (("init",), ("master", "list"), ("master", "info", "m"), ("app", "list"), ("master", "cleanup")):
        result = micado(*args, directory=long)
        assert result.returncode == 2, (args, result.stderr)
        line = one_line(result)
        assert line.startswith(f"micado: error: InvalidArgument: the MiCADO dir {str(long)[:60]}...(")
        assert line.endswith("is too long a path (a name in it may have 255 bytes, the whole 3840): "
                             "set MICADO_CLI_DIR to a shorter one")
    assert os.listdir(tmp_path) == []  # nothing was made
