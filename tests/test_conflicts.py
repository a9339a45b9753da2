"""uv's "No solution found" turned into an override proposal, against real uv runs.

The index is a loopback one of tiny wheels whose requirements conflict in each of uv's shapes:
a marker (`rtarrow{platform_machine == 'x86_64'}<2`), an extra (`rtarrow[fast]<2`), ranges on
both sides, a chain through a third package, several pins at once, and shapes no override of
the variant's settles.
"""

from __future__ import annotations

import json
import platform as host
from collections.abc import Iterator
from pathlib import Path

import pytest

from runenv._cache import Cache
from runenv.errors import LockError
from runenv.lock import conflicts
from runenv.lock.pylock import Lock
from runenv.lock.request import LockRequest
from runenv.lock.resolve import lock
from runenv.platforms import Platform
from support.dists import write_wheel
from support.index import IndexServer, serve, write_simple_pages

PY = host.python_version()


def _wheel(
    files: Path, name: str, version: str, *requires: str, extras: tuple[str, ...] = ()
) -> None:
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    meta += "".join(f"Provides-Extra: {e}\n" for e in extras)
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
    write_wheel(files, name, version, {f"{name}/__init__.py": b""}, metadata=meta)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServer]:
    root = tmp_path_factory.mktemp("conflict-index")
    files = root / "files"
    for version in ("1.5", "2.0", "3.0"):
        _wheel(files, "rtarrow", version, extras=("fast",))
    _wheel(files, "rtcudf", "1.0", "rtarrow<2; platform_machine == 'x86_64'")
    _wheel(files, "rtcudfplain", "1.0", "rtarrow>=1,<2")
    _wheel(files, "rtextra", "1.0", "rtarrow[fast]<2")
    _wheel(files, "rtmid", "1.0", "rtarrow<2")
    _wheel(files, "rttop", "1.0", "rtmid==1.0")
    _wheel(files, "rtnum", "1.0")
    _wheel(files, "rtnum", "2.0")
    _wheel(files, "rttwo", "1.0", "rtarrow<2", "rtnum<2")
    _wheel(files, "rtleft", "1.0", "rtnum<2")
    _wheel(files, "rtright", "1.0", "rtnum>=2")
    write_simple_pages(root)
    yield from serve(root)


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "cache")


def _lock(
    server: IndexServer, cache: Cache, folder: Path, *reqs: str, overrides: tuple[str, ...] = ()
) -> Lock:
    request = LockRequest(
        requirements=reqs,
        python_version=PY,
        platform=Platform.LINUX_X64,
        indexes=(),
        default_index=server.index_url,
        overrides=overrides,
    )
    return lock(request, folder / "pylock.linux-x64.toml", cache=cache, timeout=120)


def _refused(server: IndexServer, cache: Cache, folder: Path, *reqs: str) -> str:
    with pytest.raises(LockError) as err:
        _lock(server, cache, folder, *reqs)
    assert not (folder / "pylock.linux-x64.toml").exists()
    return str(err.value)


def _variant(tmp_path: Path, config: str = "config.toml", text: str = "") -> Path:
    folder = tmp_path / "versions" / "3.12.10"
    folder.mkdir(parents=True)
    (folder / config).write_text(text)
    return folder


def test_marker_in_braces_gives_the_override_and_it_resolves(
    server: IndexServer, cache: Cache, tmp_path: Path
) -> None:
    folder = _variant(tmp_path, text='[packages]\ndependencies = ["rtcudf==1.0"]\n')
    message = _refused(server, cache, folder, "rtcudf==1.0", "rtarrow==2.0")
    assert message == (
        f"cannot lock 3.12.10 for linux-x64 (Python {PY}): rtcudf==1.0 needs rtarrow<2, but "
        "the variant pins rtarrow==2.0. To force rtarrow==2.0 over that range (a uv override "
        'replaces every requirement on the package), add rtarrow = "2.0" under '
        "[packages.overrides] in versions/3.12.10/config.toml; with it the lock succeeds "
        "(runenv resolved it)"
    )
    lk = _lock(server, cache, folder, "rtcudf==1.0", "rtarrow==2.0", overrides=("rtarrow==2.0",))
    assert {p.name: p.version for p in lk.packages} == {"rtcudf": "1.0", "rtarrow": "2.0"}


def test_extra_range_and_chain_shapes(server: IndexServer, cache: Cache, tmp_path: Path) -> None:
    extra = _refused(server, cache, tmp_path / "a", "rtextra==1.0", "rtarrow==2.0")
    assert "rtextra==1.0 needs rtarrow<2, but the variant pins rtarrow==2.0." in extra
    assert 'add rtarrow = "2.0" under [packages.overrides]' in extra
    assert extra.endswith("with it the lock succeeds (runenv resolved it)")

    # Ranges on both sides: the variant's own range is what the override forces.
    ranges = _refused(server, cache, tmp_path / "b", "rtcudfplain==1.0", "rtarrow>=2")
    assert "rtcudfplain==1.0 needs rtarrow>=1,<2, but the variant asks for rtarrow>=2." in ranges
    assert 'add rtarrow = ">=2" under [packages.overrides]' in ranges
    assert ranges.endswith("the lock succeeds (runenv resolved it)")
    lk = _lock(
        server, cache, tmp_path / "b", "rtcudfplain==1.0", "rtarrow>=2", overrides=("rtarrow>=2",)
    )
    assert {p.name: p.version for p in lk.packages}["rtarrow"] == "3.0"

    # A chain: the variant's rttop needs rtmid, which needs rtarrow<2.
    chain = _refused(server, cache, tmp_path / "c", "rttop==1.0", "rtarrow==2.0")
    assert "rttop==1.0 needs rtarrow<2 (through rtmid), but the variant pins rtarrow==2.0" in chain
    assert 'add rtarrow = "2.0"' in chain and chain.endswith("(runenv resolved it)")
    for message in (extra, ranges, chain):
        assert len(message.splitlines()) == 1, message


def test_several_conflicts_are_found_one_round_after_another(
    server: IndexServer, cache: Cache, tmp_path: Path
) -> None:
    # uv reports one conflict at a time: the rtnum one first, rtarrow's only once it is forced.
    folder = _variant(tmp_path)
    message = _refused(server, cache, folder, "rttwo==1.0", "rtarrow==2.0", "rtnum==2.0")
    assert "rttwo==1.0 needs rtnum<2, but the variant pins rtnum==2.0" in message
    assert "rttwo==1.0 needs rtarrow<2, but the variant pins rtarrow==2.0" in message
    assert (
        'add the lines rtnum = "2.0"; rtarrow = "2.0" under [packages.overrides] in '
        "versions/3.12.10/config.toml; with them the lock succeeds" in message
    )
    lk = _lock(
        server, cache, folder, "rttwo==1.0", "rtarrow==2.0", "rtnum==2.0",
        overrides=("rtnum==2.0", "rtarrow==2.0"),
    )  # fmt: skip
    assert {p.name: p.version for p in lk.packages}["rtnum"] == "2.0"


def test_json_and_inline_configs_get_their_own_syntax(
    server: IndexServer, cache: Cache, tmp_path: Path
) -> None:
    folder = _variant(tmp_path / "j", "config.json", json.dumps({"packages": {}}))
    message = _refused(server, cache, folder, "rtcudf==1.0", "rtarrow==2.0")
    assert 'add "rtarrow": "2.0" to "packages" -> "overrides" in versions/3.12.10/config.json' in (
        message
    )
    inline = '[packages]\noverrides = { rtother = "1.0" }\n'
    folder = _variant(tmp_path / "t", text=inline)
    message = _refused(server, cache, folder, "rtcudf==1.0", "rtarrow==2.0")
    assert 'add rtarrow = "2.0" to the overrides = { ... } table of [packages]' in message


def test_no_single_override_is_said_and_uv_explains_once(
    server: IndexServer, cache: Cache, tmp_path: Path
) -> None:
    # Two packages want opposite ranges of one the variant does not pin.
    message = _refused(server, cache, tmp_path / "a", "rtleft==1.0", "rtright==1.0")
    assert message == (
        f"cannot lock a for linux-x64 (Python {PY}): uv found no solution: rtright (every "
        "version) needs rtnum>=2 and rtleft (every version) needs rtnum<2, a package the "
        "variant does not pin. No single override can be proposed: pin versions of those two "
        "that agree, or force one version of it under packages.overrides if you know one that "
        "works with both"
    )
    # A version that does not exist: uv's own sentence, once, and why no override helps.
    missing = _refused(server, cache, tmp_path / "b", "rtarrow==9.0")
    assert missing == (
        f"cannot lock b for linux-x64 (Python {PY}): uv found no solution: Because there is no "
        "version of rtarrow==9.0 and you require rtarrow==9.0, we can conclude that your "
        "requirements are unsatisfiable. No single override can be proposed: no requirement "
        "of the variant is excluded by another package's range"
    )


# uv's text as uv 0.13 prints it for the reference's main variant (`uv pip compile` of
# cudf-cu12==25.6.0 and pyarrow==24.0.0 for x86_64-unknown-linux-gnu, Python 3.12, from PyPI).
CUDF = """\
error: No solution found when resolving dependencies
  cause: Because cudf-cu12==25.6.0 depends on pyarrow{platform_machine == 'x86_64'}>=14.0.0,<20.0.0a0 and you require cudf-cu12==25.6.0, we can conclude that you require pyarrow>=14.0.0,<20.0.0a0.
         And because you require pyarrow==24.0.0, we can conclude that your requirements are unsatisfiable.
"""  # noqa: E501


def test_the_reference_cudf_message_as_uv_prints_it() -> None:
    found = conflicts.conflicts(CUDF, ["cudf-cu12==25.6.0", "pyarrow==24.0.0"])
    assert [c.sentence() for c in found] == [
        "cudf-cu12==25.6.0 needs pyarrow>=14.0.0,<20.0.0a0, but the variant pins pyarrow==24.0.0"
    ]
    assert found[0].override_value == "24.0.0"
    # A pin inside the range is no conflict, whatever uv's text mentions.
    assert conflicts.conflicts(CUDF, ["cudf-cu12==25.6.0", "pyarrow==19.0.1"]) == []


@pytest.mark.network
def test_real_cudf_pyarrow_conflict_from_pypi(tmp_path: Path) -> None:
    """The reference's main variant's conflict, resolved by uv from PyPI for linux-x64."""
    request = LockRequest(
        requirements=("cudf-cu12==25.6.0", "pyarrow==24.0.0"),
        python_version="3.12.10",
        platform=Platform.LINUX_X64,
        indexes=(),
    )
    folder = _variant(tmp_path)
    path = folder / "pylock.linux-x64.toml"
    cache = Cache(tmp_path / "cache")
    with pytest.raises(LockError) as err:
        lock(request, path, cache=cache, timeout=600)
    message = str(err.value)
    assert len(message.splitlines()) == 1, message
    assert (
        "cudf-cu12==25.6.0 needs pyarrow>=14.0.0,<20.0.0a0, but the variant pins pyarrow==24.0.0"
        in message
    )
    assert 'add pyarrow = "24.0.0" under [packages.overrides] in versions/3.12.10/config.toml' in (
        message
    )
    assert message.endswith("with it the lock succeeds (runenv resolved it)")
    forced = LockRequest(**{**request.__dict__, "overrides": ("pyarrow==24.0.0",)})
    lk = lock(forced, path, cache=cache, timeout=600)
    assert lk.package("pyarrow") is not None and lk.package("pyarrow").version == "24.0.0"  # type: ignore[union-attr]
