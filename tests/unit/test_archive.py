"""Hostile tarballs: every one is refused fast, with an InstallError naming it, writing nothing.

The tarballs are built here, in tmp_path. A gzip bomb is cheap to build: a gzip file may
be a series of gzip members, so one compressed MiB of zeros repeated 2048 times is a
2 MB file that decompresses to 2 GiB.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import resource
import tarfile
import time
from pathlib import Path

import pytest

from micado.exceptions import InstallError
from micado.installer import archive
from micado.installer.archive import safe_extract
from paths import RELEASES

MIB = 1 << 20
ZEROS_MIB_GZ = gzip.compress(bytes(MIB), compresslevel=9)  # about 1 KB
#: The real ansible-micado releases, when this checkout has them next to it.


def gzip_bomb(path: Path, members: list[tarfile.TarInfo], *, zeros: int | None = None) -> Path:
    """A .tar.gz of ``members`` whose data is zeros (``zeros`` MiB of it per member if given)."""
    with open(path, "wb") as out:
        for member in members:
            out.write(gzip.compress(member.tobuf(tarfile.GNU_FORMAT)))
            out.write(ZEROS_MIB_GZ * (member.size // MIB if zeros is None else zeros))
        out.write(gzip.compress(bytes(2 * tarfile.BLOCKSIZE)))
    return path


def small_tarball(path: Path, entries: list[tuple[str, bytes | None]]) -> Path:
    """A .tar.gz of files (bytes) and folders (None), in this order."""
    with tarfile.open(path, "w:gz", format=tarfile.GNU_FORMAT) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def file_member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    return info


def refused(tarball: Path, dest: Path, match: str) -> InstallError:
    """Extract ``tarball``, expecting a one-line InstallError naming it; check nothing was written."""
    dest.mkdir()
    started = time.monotonic()
    with pytest.raises(InstallError, match=match) as caught:
        safe_extract(tarball, dest)
    assert time.monotonic() - started < 3
    message = str(caught.value)
    assert str(tarball) in message
    assert "\n" not in message
    assert len(message) < 600
    assert list(dest.iterdir()) == []
    return caught.value


def test_a_gzip_bomb_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    bomb = gzip_bomb(tmp_path / "bomb.tar.gz", [file_member("top/zeros", 2048 * MIB)])
    assert bomb.stat().st_size < 3 * MIB
    refused(bomb, tmp_path / "out", f"unpacks to more than {archive.MAX_UNPACKED_BYTES} bytes")


def test_members_adding_up_past_the_cap_are_refused_at_the_one_crossing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archive, "MAX_UNPACKED_BYTES", 4 * MIB)
    bomb = gzip_bomb(tmp_path / "bomb.tar.gz", [file_member(f"top/part{i}", MIB) for i in range(8)])
    refused(bomb, tmp_path / "out", r"more than 4194304 bytes \(reached at member 'top/part4'")


def test_a_huge_long_name_record_is_not_read(tmp_path: Path) -> None:
    # A GNU long-name record says how long the name is; tarfile reads it whole, into memory.
    record = tarfile.TarInfo("././@LongLink")
    record.type, record.size = tarfile.GNUTYPE_LONGNAME, 2048 * MIB
    bomb = gzip_bomb(tmp_path / "name-bomb.tar.gz", [record], zeros=64)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    refused(bomb, tmp_path / "out", "tar stream runs past")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 32 * 1024  # KiB


def test_too_many_members_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive, "MAX_MEMBERS", 100)
    tarball = small_tarball(tmp_path / "many.tar.gz", [(f"top/{i}", b"") for i in range(101)])
    refused(tarball, tmp_path / "out", "more than 100 members")


def test_a_name_of_200000_folders_is_refused_at_once(tmp_path: Path) -> None:
    # 577 bytes compressed; the 0.9-era check was quadratic in the depth, extraction recursive.
    tarball = small_tarball(tmp_path / "deep.tar.gz", [("a/" * 200_000 + "x", b"")])
    assert tarball.stat().st_size < 1024
    error = refused(tarball, tmp_path / "out", "name is longer than 1024 bytes")
    assert "a/a/a/a/..." in str(error)  # the name is shown cut short


@pytest.mark.parametrize(
    "name,reason",
    [
        ("top/" + "d/" * 64 + "x", "more than 64 levels deep"),
        ("top/" + "n" * 300, "a part of its name is longer than 255 bytes"),
    ],
    ids=["deep", "long-part"],
)
def test_names_too_deep_or_with_a_part_too_long_are_refused(tmp_path: Path, name: str, reason: str) -> None:
    tarball = small_tarball(tmp_path / "names.tar.gz", [("top/ok", b"ok"), (name, b"x")])
    refused(tarball, tmp_path / "out", reason)


@pytest.mark.parametrize(
    "entries,reason",
    [
        ([("top/f", b"file"), ("top/f/x", b"under it")], "member 'top/f/x' .* goes through the file 'top/f'"),
        ([("top/d", None), ("top/d", b"file")], "member 'top/d' .* also has a folder of that name"),
        ([("top/f", b"file"), ("top/f", None)], "member 'top/f' .* also has a file of that name"),
    ],
    ids=["under-a-file", "file-over-folder", "folder-over-file"],
)
def test_entries_clashing_with_a_file_or_folder_are_refused(
    tmp_path: Path, entries: list[tuple[str, bytes | None]], reason: str
) -> None:
    refused(small_tarball(tmp_path / "clash.tar.gz", entries), tmp_path / "out", reason)


def test_a_hard_link_to_anything_but_an_earlier_file_is_refused(tmp_path: Path) -> None:
    link = tarfile.TarInfo("top/link")
    link.type, link.linkname = tarfile.LNKTYPE, "top/later"
    tarball = tmp_path / "link.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.addfile(link)
        tar.addfile(file_member("top/later", 2), io.BytesIO(b"ok"))
    refused(tarball, tmp_path / "out", "does not point to a file before it")


def test_a_truncated_tarball_is_refused(tmp_path: Path) -> None:
    whole = small_tarball(tmp_path / "whole.tar.gz", [("top/data", os.urandom(64 * 1024))])
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    refused(cut, tmp_path / "out", "is not a complete tar archive: it is truncated")


def test_a_write_failure_is_an_install_error(tmp_path: Path) -> None:
    # e.g. a full disk; here the target folder already holds a file where a folder goes.
    tarball = small_tarball(tmp_path / "ok.tar.gz", [("top/f", b"x")])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "top").write_text("in the way")
    with pytest.raises(InstallError, match=f"^cannot unpack {tarball} into {tmp_path / 'out'}: Not a directory$"):
        safe_extract(tarball, tmp_path / "out")


RECOMPRESS = {"gz": None, "bz2": bz2.compress, "xz": lzma.compress, "tar": lambda data: data}


@pytest.mark.skipif(not list(RELEASES.glob("ansible-micado-*.tar.gz")), reason="no ansible-micado releases here")
@pytest.mark.parametrize("compression", list(RECOMPRESS))
def test_the_real_releases_pass_with_room_to_spare(tmp_path: Path, compression: str) -> None:
    for release in sorted(RELEASES.glob("ansible-micado-*.tar.gz")):
        tarball = release
        recompress = RECOMPRESS[compression]
        if recompress is not None:  # the same release in another compression
            tarball = tmp_path / f"{release.name}.{compression}"
            tarball.write_bytes(recompress(gzip.decompress(release.read_bytes())))
        dest = tmp_path / f"{release.name}-out"
        dest.mkdir()
        safe_extract(tarball, dest)
        entries = [str(path.relative_to(dest)) for path in dest.rglob("*")]
        size = sum(path.stat().st_size for path in dest.rglob("*") if path.is_file())
        assert len(entries) > 150
        assert size > 500_000
        assert len(entries) * 100 <= archive.MAX_MEMBERS
        assert size * 100 <= archive.MAX_UNPACKED_BYTES
        assert max(len(name.encode()) for name in entries) * 8 <= archive.MAX_NAME_BYTES
        assert max(name.count("/") + 1 for name in entries) * 7 <= archive.MAX_DEPTH
