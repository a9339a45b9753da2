"""Stage 5: install wheels into a runtime tree laid out for a target platform (maybe not the host).

The work is pypa/installer's (`WheelFile` -> `installer.install` -> a
`SchemeDictionaryDestination` whose schemes are the target's layout under the runtime root),
so the tree is what a normal install gives: RECORD, INSTALLER, entry-point scripts, `.data`
directories. The parts, named as installer names its own:

- `runenv.install.sources`: the wheels, opened once, grouped so that no two groups write one path;
- `runenv.install.destination`: the target's layout and the destination that writes, verifies and
  records each file (relocatable, cross-platform, no bytecode);
- `runenv.install.scripts`: the relocatable sh trampolines and Windows `.exe` launchers;
- `runenv.install.installed`: distributions already in the tree (PBS's pip), removed first;
- `runenv.install.modules`: the top-level names each distribution installed, for the manifest.

Groups install on parallel threads (inflate, sha256 and writes release the GIL).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
import zipfile
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import installer
from installer.exceptions import InstallerError
from installer.records import InvalidRecordEntry
from installer.utils import parse_metadata_file
from packaging.utils import canonicalize_name as canonical

from runenv._cache import Cache, file_sha256
from runenv.errors import BuildError
from runenv.install import images
from runenv.install.destination import RuntimeDestination
from runenv.install.images import Image, record_hashes
from runenv.install.installed import remove_installed
from runenv.install.layout import Layout
from runenv.install.modules import top_level
from runenv.install.sources import WheelSource, clash_groups, open_wheel
from runenv.platforms import Platform

# installer skips the `__pycache__/*.pyc` files some wheels carry (numpy does) and warns each
# time, attributed to its caller (`_install_one` below); skipping is right (bytecode left over
# from the wheel's build) and the user cannot act.
warnings.filterwarnings(
    "ignore", r"Skip installing .*__pycache__", RuntimeWarning, r"runenv\.install"
)

INSTALLER_NAME = b"runenv\n"


@dataclass(frozen=True)
class InstalledDist:
    """One installed distribution, as the manifest records it."""

    name: str
    version: str
    wheel: str  # the wheel's file name
    sha256: str  # of the wheel file
    top_level: tuple[str, ...]  # importable top-level modules and packages it installed


def install_wheels(
    root: Path, wheels: Sequence[Path], platform: Platform, python_version: str
) -> list[InstalledDist]:
    """Install `wheels` into the runtime tree `root` laid out for `platform`; report each.
    (A build installs through images in the cache instead: `make_images`, `link_images`.)

    Fails with a `BuildError` naming the wheel if one is broken (a bad zip, a file whose hash
    or size differs from its RECORD, a file outside its scheme). The tree is then partly
    written: callers build in a staging directory and discard it on error.
    """
    root = root.resolve()
    layout = Layout.make(root, platform, python_version)
    sources: list[WheelSource] = []
    try:
        for wheel in wheels:
            sources.append(open_wheel(wheel))
        seen: dict[str, Path] = {}  # canonical name -> wheel
        for wheel, source in zip(wheels, sources, strict=True):
            name = str(canonical(source.distribution))
            if name in seen:
                raise BuildError(f"{wheel.name} and {seen[name].name} are the same package")
            seen[name] = wheel
        for name in seen:
            remove_installed(layout.site_packages, name, root)
        results: dict[int, InstalledDist] = {}
        groups = clash_groups(sources, layout)
        with ThreadPoolExecutor(max_workers=_workers(len(groups))) as pool:
            futures = [pool.submit(_install_group, g, wheels, sources, layout) for g in groups]
            try:
                for future in futures:
                    results.update(future.result())
            except BaseException:
                pool.shutdown(cancel_futures=True)  # the first failure ends the install
                raise
        return [results[i] for i in range(len(wheels))]
    finally:
        for source in sources:
            source.close()


def make_images(
    wheels: Sequence[Path],
    platform: Platform,
    python_version: str,
    cache: Cache,
    sha256s: Sequence[str | None] | None = None,
    finish: Callable[[Path], None] | None = None,
    tag: str = "",
) -> list[tuple[Path, Image]]:
    """The image of each wheel for `platform`'s layout (`runenv.install.images`), made where missing
    (in parallel; `finish(image_tree)` runs on each new one), each with its wheel."""
    site = platform.info.site_packages(python_version).as_posix()
    known = record_hashes(site)

    def one(wheel: Path, sha256: str | None) -> tuple[Path, Image]:
        digest = sha256 or file_sha256(wheel)

        def make(tree: Path) -> dict[str, object]:
            (dist,) = install_wheels(tree, [wheel], platform, python_version)
            if finish is not None:
                finish(tree)
            return {**dataclasses.asdict(dist), "sha256": digest}

        image_key = images.key(
            kind="wheel",
            wheel_sha256=digest,
            platform=platform.value,
            python=python_version,
            installer=INSTALLER_NAME.decode().strip(),
            finish=tag,
        )
        return wheel, images.ensure(cache, image_key, make, known_hashes=known)

    hashes: list[str | None] = list(sha256s) if sha256s is not None else [None] * len(wheels)
    # More threads than cores: `finish` may wait (for the interpreter that compiles) while
    # other wheels unpack. The largest wheels start first, so that no large one is left to
    # finish alone on one core at the end (longest first; results keep the given order).
    largest_first = sorted(range(len(wheels)), key=lambda i: -wheels[i].stat().st_size)
    with ThreadPoolExecutor(max_workers=_workers(len(wheels))) as pool:
        futures = {i: pool.submit(one, wheels[i], hashes[i]) for i in largest_first}
        return [futures[i].result() for i in range(len(wheels))]


def link_images(
    root: Path,
    made: Sequence[tuple[Path, Image]],
    platform: Platform,
    python_version: str,
    *,
    known: dict[tuple[int, int], str] | None = None,
) -> list[InstalledDist]:
    """Link the images `make_images` gave into the runtime tree `root`, in order: where two
    wheels write one path, the later one wins. Two wheels of one package are an error.
    `known` gets each linked file's sha256 by inode (`images.link_into`)."""
    site = platform.info.site_packages(python_version).as_posix()
    dists = [_dist_of(image, wheel) for wheel, image in made]
    seen: dict[str, str] = {}
    for dist in dists:
        name = str(canonical(dist.name))
        if name in seen:
            raise BuildError(f"{dist.wheel} and {seen[name]} are the same package")
        seen[name] = dist.wheel
    root.mkdir(parents=True, exist_ok=True)
    layout_site = root.resolve() / site
    for name in seen:
        remove_installed(layout_site, name, root.resolve())
    for _, image in made:
        images.link_into(image, root, known)
    return dists


def _dist_of(image: Image, wheel: Path) -> InstalledDist:
    info = image.info
    names = info["top_level"]
    return InstalledDist(
        name=str(info["name"]),
        version=str(info["version"]),
        wheel=wheel.name,
        sha256=str(info["sha256"]),
        top_level=tuple(str(n) for n in names) if isinstance(names, list | tuple) else (),
    )


def _workers(groups: int) -> int:
    # Inflate, hashing and writes release the GIL; one more thread than cores covers the time
    # each spends waiting in open/mkdir.
    return max(1, min(groups, (os.cpu_count() or 1) + 1))


def _install_group(
    group: list[int], wheels: Sequence[Path], sources: Sequence[WheelSource], layout: Layout
) -> dict[int, InstalledDist]:
    return {i: _install_one(wheels[i], sources[i], layout) for i in group}


def _install_one(wheel: Path, source: WheelSource, layout: Layout) -> InstalledDist:
    destination = RuntimeDestination.for_layout(layout, source)
    try:
        # Names only: the contents are checked while they are written.
        source.validate_record(validate_contents=False)
        metadata = parse_metadata_file(source.read_dist_info("METADATA"))
        installer.install(source, destination, {"INSTALLER": INSTALLER_NAME})
    except (
        InstallerError,
        InvalidRecordEntry,
        ValueError,
        KeyError,
        AssertionError,
        EOFError,
        OSError,
        NotImplementedError,  # a zip compression method Python cannot read
        zipfile.BadZipFile,
        zlib.error,  # a corrupt deflate stream
    ) as exc:
        raise BuildError(f"cannot install {wheel.name}: {_reason(exc)}") from None
    lib = {"purelib", "platlib"}
    lib_paths = [r.path for s, r in destination.written if s in lib]
    return InstalledDist(
        name=str(metadata["Name"] or source.distribution),
        version=str(metadata["Version"] or source.version),
        wheel=wheel.name,
        sha256=file_sha256(wheel),
        top_level=top_level(lib_paths),
    )


def _reason(exc: BaseException) -> str:
    issues = getattr(exc, "issues", None)
    if issues:
        return "; ".join(str(i) for i in issues)
    return str(exc) or type(exc).__name__
