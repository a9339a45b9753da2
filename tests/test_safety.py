"""Hostile and unlucky inputs: path-shaped variant names, clean, links in copied folders, a
poisoned cache, broken wheels, a full disk, unusable cache folders, a failed build's log."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

import pytest

from runenv._cache import Cache, file_sha256, is_verified
from runenv.cli import main
from runenv.config.plan import CopyStep
from runenv.errors import BuildError, FetchError
from runenv.fetch.download import FetchOptions, fetch_to_cache
from runenv.install.wheels import install_wheels
from runenv.lock.pylock import read_lock
from runenv.platforms import host_platform
from runenv.tree.copy_files import copy_files
from support.dists import write_wheel
from support.errors import one_line_error
from support.fs import tmpfs
from support.index import IndexServer
from support.project import (
    VARIANT,
    archive_of,
    build,
    cli_stderr,
    manifest_of,
    run_unpacked,
)
from support.spy import spy_hashing

PY = "{}.{}".format(*sys.version_info[:2])


# --- variant names --------------------------------------------------------------------------


@pytest.fixture
def bare_project(tmp_path: Path) -> Path:
    """A project with one valid variant and a pydist/ folder, and a config-bearing folder
    outside it that a path-shaped name could reach."""
    root = tmp_path / "proj"
    (root / "versions" / "3.12.10").mkdir(parents=True)
    (root / "versions" / "3.12.10" / "config.toml").write_text("")
    (root / "pydist" / "3.12.10").mkdir(parents=True)
    (root / ".git").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "config.toml").write_text("")
    (outside / "precious.txt").write_text("keep me")
    return root


BAD_NAMES = [
    "..",
    "../..",
    ".",
    "3.12.10/../3.12.10",
    "3.12.10/",
    "a/b",
    "a\\b",
    ".hidden",
    "",
    "3.12.10\x00x",
    "~",
    "*",
]


@pytest.mark.parametrize("name", [*BAD_NAMES, "ABSOLUTE"])
@pytest.mark.parametrize("command", ["build", "lock", "config", "check", "clean", "new"])
def test_path_shaped_variant_names_are_refused_by_every_command(
    bare_project: Path, tmp_path: Path, name: str, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if name == "ABSOLUTE":
        name = str(tmp_path / "outside")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main(["-q", "--project", str(bare_project), command, name]) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "variant" in line
    # Nothing was removed, written or unpacked anywhere.
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert (tmp_path / "outside" / "precious.txt").read_text() == "keep me"


def test_a_variant_folder_that_is_a_link_is_refused(
    bare_project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (bare_project / "versions" / "3.12.10-x").symlink_to(tmp_path / "outside")
    assert main(["-q", "--project", str(bare_project), "config", "3.12.10-x"]) == 2
    assert "is a link" in one_line_error(capsys.readouterr().err)
    assert main(["--project", str(bare_project), "list", "--json"]) == 0
    listed = [v["variant"] for v in json.loads(capsys.readouterr().out)]
    assert "3.12.10-x" not in listed


# --- clean ----------------------------------------------------------------------------------


def test_clean_removes_only_runenv_outputs_and_never_follows_links(
    bare_project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dist = bare_project / "dist"
    dist.mkdir()
    mine = dist / "runenv-3.12.10-linux-x64.tar.gz"
    mine.write_text("archive")
    theirs = dist / "notes.txt"  # the user's own file in dist/
    theirs.write_text("mine")
    other_variant = dist / "runenv-3.12.10-atls-linux-x64.json"
    other_variant.write_text("{}")
    prefix_alike = dist / "runenv-3.12.10-atls-extra-linux-x64.json"  # another variant's
    prefix_alike.write_text("{}")
    # pydist/<variant> as a link to a folder outside: the link goes, the folder stays.
    linked = bare_project / "pydist" / "3.12.10-atls"
    linked.symlink_to(tmp_path / "outside")
    assert main(["-q", "--project", str(bare_project), "clean", "3.12.10-atls"]) == 0
    assert not linked.is_symlink() and (tmp_path / "outside" / "precious.txt").exists()
    assert not other_variant.exists() and mine.exists() and theirs.exists()
    assert prefix_alike.exists()
    # `clean 3.12.10` leaves `3.12.10-atls`'s outputs alone.
    other_variant.write_text("{}")
    assert main(["-q", "--project", str(bare_project), "clean", "3.12.10"]) == 0
    assert other_variant.exists() and not mine.exists() and theirs.exists()
    mine.write_text("archive")
    capsys.readouterr()
    assert main(["-q", "--project", str(bare_project), "clean"]) == 0
    assert not mine.exists() and theirs.exists()
    assert not (bare_project / "pydist").exists()
    assert (bare_project / "versions" / "3.12.10" / "config.toml").exists()
    assert (bare_project / ".git").is_dir()


def test_clean_refuses_output_folders_that_are_links(
    bare_project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "runenv-3.12.10-linux-x64.tar.gz").write_text("not runenv's to remove")
    (bare_project / "dist").symlink_to(elsewhere)
    assert main(["-q", "--project", str(bare_project), "clean"]) == 2
    assert "is a link" in one_line_error(capsys.readouterr().err)
    assert (elsewhere / "runenv-3.12.10-linux-x64.tar.gz").exists()
    assert (bare_project / "pydist" / "3.12.10").is_dir()


@pytest.mark.parametrize("where", ["untagged", "project", "above"])
def test_clean_cache_removes_only_a_tagged_runenv_cache(
    bare_project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    where: str,
) -> None:
    target = {
        "untagged": tmp_path / "outside",
        "project": bare_project,
        "above": tmp_path,
    }[where]
    if where != "untagged":
        Cache(target).section("wheels")  # tagged: runenv wrote there, still not removable
    monkeypatch.setenv("RUNENV_CACHE_DIR", str(target))
    assert main(["-q", "--project", str(bare_project), "clean", "--cache"]) == 2
    one_line_error(capsys.readouterr().err)
    assert target.is_dir() and (bare_project / "versions").is_dir()
    # A cache runenv made is removed.
    cache = tmp_path / "real-cache"
    Cache(cache).section("wheels")
    monkeypatch.setenv("RUNENV_CACHE_DIR", str(cache))
    assert main(["-q", "--project", str(bare_project), "clean", "--cache"]) == 0
    assert not cache.exists()


# --- copyFiles and links --------------------------------------------------------------------


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    """A copyFiles folder inside a variant folder, with good links, and a secret outside."""
    variant = tmp_path / "versions" / "v"
    folder = variant / "files"
    (folder / "lib").mkdir(parents=True)
    (folder / "lib" / "libfoo.so.1").write_bytes(b"\x7fELF-not-really")
    (folder / "lib" / "libfoo.so").symlink_to("libfoo.so.1")
    (folder / "bin").mkdir()
    (folder / "bin" / "tool").symlink_to("../lib/libfoo.so.1")
    (folder / "share").symlink_to("lib")  # a linked folder inside: kept as a link
    (tmp_path / "secret.txt").write_text("SECRET")
    (variant / "outside-the-folder.txt").write_text("not copied")
    return folder


def copy_into(tmp_path: Path, folder: Path) -> tuple[Path, list[str]]:
    root = tmp_path / "runtime"
    root.mkdir(exist_ok=True)
    return root, copy_files([CopyStep(folder, PurePosixPath("opt"))], root)


def test_links_inside_a_copied_folder_are_copied_as_links(tmp_path: Path, payload: Path) -> None:
    root, written = copy_into(tmp_path, payload)
    assert written == ["opt/bin/tool", "opt/lib/libfoo.so", "opt/lib/libfoo.so.1", "opt/share"]
    assert (root / "opt/lib/libfoo.so").readlink() == Path("libfoo.so.1")
    assert (root / "opt/bin/tool").read_bytes() == b"\x7fELF-not-really"
    assert (root / "opt/share").is_symlink()
    assert (root / "opt/share/libfoo.so.1").resolve().is_relative_to(root.resolve())


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("abs-secret", lambda f, t: (f / "abs-secret").symlink_to(t / "secret.txt")),
        ("rel-secret", lambda f, t: (f / "rel-secret").symlink_to("../../../secret.txt")),
        ("passwd", lambda f, t: (f / "passwd").symlink_to("/etc/passwd")),
        ("up-and-back", lambda f, t: (f / "up-and-back").symlink_to("../files/lib/libfoo.so.1")),
        ("variant-file", lambda f, t: (f / "variant-file").symlink_to("../outside-the-folder.txt")),
        ("dangling", lambda f, t: (f / "dangling").symlink_to("nowhere")),
        ("dir-out", lambda f, t: (f / "dir-out").symlink_to(t)),
        ("abs-inside", lambda f, t: (f / "abs-inside").symlink_to(f / "lib" / "libfoo.so.1")),
        ("chain", lambda f, t: (f / "lib" / "chain").symlink_to("../abs-secret-2")),
        ("loop", lambda f, t: (f / "loop").symlink_to("loop")),
    ],
)
def test_links_leading_out_of_a_copied_folder_are_refused(
    tmp_path: Path, payload: Path, name: str, make: object
) -> None:
    if name == "chain":  # a link inside to a link that leads out
        (payload / "abs-secret-2").symlink_to(tmp_path / "secret.txt")
    make(payload, tmp_path)  # type: ignore[operator]
    with pytest.raises(BuildError, match=r"copyFiles: .* is a link to .*outside the copied folder"):
        copy_into(tmp_path, payload)
    copied = [p for p in (tmp_path / "runtime").rglob("*") if p.is_file() and not p.is_symlink()]
    assert all(p.read_bytes() != b"SECRET" for p in copied)


def test_special_files_in_a_copied_folder_are_refused(tmp_path: Path, payload: Path) -> None:
    os.mkfifo(payload / "pipe")
    with pytest.raises(BuildError, match="pipe is not a regular file"):
        copy_into(tmp_path, payload)


def test_a_build_with_a_link_out_of_its_files_fails_and_ships_nothing(
    tmp_path: Path, rtpure_project: Path, pkg_server: IndexServer
) -> None:
    root = rtpure_project
    (tmp_path / "secret.txt").write_text("SECRET")
    (root / "versions" / VARIANT / "files" / "site" / "leak.txt").symlink_to(
        tmp_path / "secret.txt"
    )
    line = one_line_error(cli_stderr(root, pkg_server, "build", code=1))
    assert "leak.txt is a link to" in line
    assert not archive_of(root).exists()
    assert not (root / "dist" / f"runenv-{VARIANT}-linux-x64.json").exists()


# --- the cache ------------------------------------------------------------------------------


@pytest.fixture
def source_file(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "src" / "pkg-1.0-py3-none-any.whl"
    path.parent.mkdir()
    path.write_bytes(b"the real bytes " * 1000)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def _flip_byte(path: Path, offset: int = 10) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


@pytest.mark.parametrize("damage", ["flip", "replace", "truncate", "link", "restore-mtime"])
def test_a_damaged_cache_entry_is_evicted_and_fetched_again(
    tmp_path: Path, source_file: tuple[Path, str], damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    src, sha = source_file
    cache = Cache(tmp_path / "cache")
    cached = fetch_to_cache(cache, "wheels", str(src), sha, src.name)
    stat_before = cached.stat()
    if damage == "flip":
        _flip_byte(cached)
    elif damage == "restore-mtime":  # same size, same mtime: the ctime still tells
        _flip_byte(cached)
        os.utime(cached, ns=(stat_before.st_atime_ns, stat_before.st_mtime_ns))
    elif damage == "replace":
        other = tmp_path / "other.whl"
        other.write_bytes(b"POISONED bytes " * 1000)
        other.replace(cached)
    elif damage == "truncate":
        cached.write_bytes(b"")
    else:
        cached.unlink()
        cached.symlink_to(tmp_path / "anything")
    assert not is_verified(cached, sha)
    # Offline, the damaged entry is refused, not used.
    with pytest.raises(FetchError, match=r"does not match sha256 .* --offline"):
        fetch_to_cache(cache, "wheels", str(src), sha, src.name, FetchOptions(offline=True))
    with caplog.at_level(logging.WARNING):
        again = fetch_to_cache(cache, "wheels", str(src), sha, src.name)
    assert again == cached and file_sha256(again) == sha and not again.is_symlink()
    assert any("evicted" in r.getMessage() for r in caplog.records)
    # Verified and marked again: the next take is a stat, not a hash.
    assert is_verified(again, sha)


def test_a_cache_copied_elsewhere_is_hashed_again_once(
    tmp_path: Path, source_file: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    src, sha = source_file
    cached = fetch_to_cache(Cache(tmp_path / "c1"), "wheels", str(src), sha, src.name)
    shutil.copytree(tmp_path / "c1", tmp_path / "c2")  # copies the marker too, as a restore would
    import runenv._cache as cache_module

    hashed = spy_hashing(monkeypatch, cache_module)
    copy = tmp_path / "c2" / cached.relative_to(tmp_path / "c1")
    assert is_verified(copy, sha) and hashed == [copy]
    assert is_verified(copy, sha) and hashed == [copy]  # the renewed marker vouches now


def test_a_poisoned_cached_wheel_never_reaches_the_runtime(
    tmp_path: Path,
    rtpure_project: Path,
    pkg_server: IndexServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = rtpure_project
    cache_dir = tmp_path / "cache"
    monkeypatch.setenv("RUNENV_CACHE_DIR", str(cache_dir))
    assert build(root, pkg_server) == 0
    lock = read_lock(root / "versions" / VARIANT / "pylock.linux-x64.toml")
    pkg = lock.package("rtpure")
    assert pkg is not None and pkg.wheels
    want = pkg.wheels[0].sha256
    cached = next(cache_dir.rglob(pkg.wheels[0].filename))
    # Another valid wheel with the same name, planted in the cache slot.
    evil = write_wheel(
        tmp_path / "evil",
        "rtpure",
        "1.0",
        {"rtpure/__init__.py": b'VALUE = "POISONED from cache"\n'},
    )
    shutil.copyfile(evil, cached)
    shutil.rmtree(root / "dist")
    shutil.rmtree(root / "pydist")
    with caplog.at_level(logging.WARNING):
        assert build(root, pkg_server) == 0
    assert any("evicted" in r.getMessage() for r in caplog.records)
    record = {p["name"]: p for p in manifest_of(root)["packages"]}["rtpure"]  # type: ignore[index,union-attr]
    assert record["sha256"] == want
    assert "POISONED" not in run_unpacked(
        root, tmp_path / "rt", "import rtpure; print(rtpure.VALUE)"
    )


def test_a_tampered_source_built_wheel_is_built_again(tmp_path: Path) -> None:
    from runenv.sources import wheel_cache

    entry = wheel_cache.entry(Cache(tmp_path / "cache"), "ab" + "cd" * 31)
    source = tmp_path / "x-1.0-cp311-cp311-linux_x86_64.whl"
    source.write_bytes(b"built wheel")
    builds: list[Path] = []

    def build(stage: Path) -> Path:
        builds.append(stage)
        return wheel_cache.store_wheel(source, stage, entry)

    def take() -> Path:
        return entry.get_or_make(wheel_cache.cached_wheel, build)

    wheel = take()
    assert wheel == entry.path / source.name and len(builds) == 1
    assert take() == wheel and len(builds) == 1  # verified, taken again
    _flip_byte(wheel, 2)
    assert take() == wheel and wheel.read_bytes() == b"built wheel" and len(builds) == 2
    wheel.unlink()
    planted = entry.path / "y-1.0-py3-none-any.whl"  # dropped in, never built here
    planted.write_bytes(b"planted")
    assert take() == wheel and not planted.exists() and len(builds) == 3


# --- broken wheels --------------------------------------------------------------------------


def _wheel(tmp_path: Path, files: dict[str, bytes]) -> Path:
    return write_wheel(
        tmp_path / "wheels",
        "bad",
        "1.0",
        files,
    )


def test_a_corrupt_deflate_stream_is_one_line_naming_the_wheel(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, {"bad/__init__.py": b"x = 1\n" * 4000})
    with zipfile.ZipFile(wheel) as zf:
        info = zf.getinfo("bad/__init__.py")
    with wheel.open("r+b") as f:  # overwrite the member's compressed data, not its headers
        f.seek(info.header_offset + 26)
        name_len, extra_len = (
            int.from_bytes(f.read(2), "little"),
            int.from_bytes(f.read(2), "little"),
        )
        f.seek(info.header_offset + 30 + name_len + extra_len + 2)
        f.write(b"\xff" * 16)
    tree = tmp_path / "tree"
    with pytest.raises(BuildError, match=r"cannot install bad-1\.0-py3-none-any\.whl: "):
        install_wheels(tree, [wheel], host_platform(), PY)


def test_an_entry_that_inflates_to_other_bytes_than_its_crc_is_refused(tmp_path: Path) -> None:
    """Entries are inflated by libdeflate, not zipfile: the CRC-32 is still checked."""
    wheel = _wheel(tmp_path, {"bad/__init__.py": b"x = 1\n" * 4000})
    blob = bytearray(wheel.read_bytes())
    name = b"bad/__init__.py"
    central = blob.index(b"PK\x01\x02")  # the first central directory entry
    while blob[central + 46 : central + 46 + len(name)] != name:
        central = blob.index(b"PK\x01\x02", central + 4)
    blob[central + 16] ^= 0xFF  # the entry's CRC-32, as the central directory records it
    wheel.write_bytes(bytes(blob))
    with pytest.raises(BuildError, match=r"cannot install bad-1\.0-py3-none-any\.whl: .*CRC"):
        install_wheels(tmp_path / "tree", [wheel], host_platform(), PY)


@pytest.mark.parametrize("entry", ["/etc/evil.py", "../evil.py", "bad/../../evil.py", "C:/evil.py"])
def test_a_wheel_entry_outside_the_tree_is_named(tmp_path: Path, entry: str) -> None:
    wheel = _wheel(tmp_path, {"bad/__init__.py": b"", entry: b"evil"})
    with pytest.raises(BuildError, match=rf"entry '{entry}' is an absolute path or leaves"):
        install_wheels(tmp_path / "tree", [wheel], host_platform(), PY)
    assert not (tmp_path / "evil.py").exists()


# --- full disks and unusable cache folders --------------------------------------------------


def test_a_full_disk_while_packing_is_one_line_and_keeps_the_last_archive(
    tmp_path: Path, rtpure_project: Path, pkg_server: IndexServer
) -> None:
    root = rtpure_project
    assert build(root, pkg_server) == 0
    size = archive_of(root).stat().st_size
    out = tmp_path / "small"
    # Room for one archive and its manifest and log, not for a second one beside it.
    with tmpfs(out, size // 1024 + size // 2048 + 256):
        assert build(root, pkg_server, "--out", str(out)) == 0
        kept = {p.name: p.read_bytes() for p in out.iterdir()}
        err = cli_stderr(root, pkg_server, "build", "--out", str(out), "--refresh", code=1)
        line = one_line_error(err)
        assert "No space left on device" in line and "free some space" in line
        after = {
            p.name: p.read_bytes() for p in out.iterdir() if not p.name.endswith(".attempt.log")
        }
        assert after == kept  # the last good archive, manifest and log are untouched


@pytest.mark.parametrize("kind", ["file", "readonly"])
def test_an_unusable_cache_folder_is_one_line(
    tmp_path: Path,
    rtpure_project: Path,
    pkg_server: IndexServer,
    kind: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = rtpure_project
    with contextlib.ExitStack() as stack:
        if kind == "file":
            cache = tmp_path / "cache-file"
            cache.write_text("not a folder")
        else:
            cache = stack.enter_context(tmpfs(tmp_path / "ro", 64, readonly=True)) / "cache"
        monkeypatch.setenv("RUNENV_CACHE_DIR", str(cache))
        line = one_line_error(cli_stderr(root, pkg_server, "build", code=2))
        assert f"cache folder {cache} is not usable" in line and "RUNENV_CACHE_DIR" in line


def test_an_unusable_catalogue_cache_is_one_line(tmp_path: Path) -> None:
    from runenv_catalogue._provision import UsageError as CatalogueUsageError
    from runenv_catalogue._provision import provision

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(CatalogueUsageError, match=r"is not usable .*RUNENV_CATALOGUE_CACHE"):
        provision("file:///nowhere", "0" * 64, 1, blocker / "x", PurePosixPath("bin/python3"))


# --- a failed build's log -------------------------------------------------------------------


def test_a_failed_build_keeps_the_last_good_log(
    rtpure_project: Path, pkg_server: IndexServer
) -> None:
    root = rtpure_project
    assert build(root, pkg_server) == 0
    dist = root / "dist"
    good = {p.name: p.read_bytes() for p in dist.iterdir()}
    assert f"runenv-{VARIANT}-linux-x64.log" in good
    (root / "versions" / VARIANT / "files" / "site" / "rtbroken.py").write_text(
        "raise ImportError('rtbroken needs a GPU')\n"
    )
    assert build(root, pkg_server) == 1
    attempt = dist / f"runenv-{VARIANT}-linux-x64.attempt.log"
    assert "rtbroken" in attempt.read_text()
    assert {p.name: p.read_bytes() for p in dist.iterdir() if p != attempt} == good
    # The next good build's log takes the place of the last good one.
    (root / "versions" / VARIANT / "files" / "site" / "rtbroken.py").write_text("OK = 1\n")
    assert build(root, pkg_server) == 0
    assert not attempt.exists()
    log = f"runenv-{VARIANT}-linux-x64.log"
    assert (dist / log).read_bytes() != good[log] and "rtbroken" in (dist / log).read_text()
    with tarfile.open(archive_of(root)) as tf:
        assert any("rtbroken" in m.name for m in tf.getmembers())


def test_a_tampered_archive_is_rebuilt_not_reported_up_to_date(
    rtpure_project: Path,
    pkg_server: IndexServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = rtpure_project
    assert build(root, pkg_server) == 0
    good = manifest_of(root)["sha256"]
    _flip_byte(archive_of(root), 4096)  # same size, other bytes
    capsys.readouterr()
    assert build(root, pkg_server) == 0
    assert capsys.readouterr().out.startswith("built:")
    assert file_sha256(archive_of(root)) == good == manifest_of(root)["sha256"]
    assert build(root, pkg_server) == 0
    assert capsys.readouterr().out.startswith("up to date:")
