"""Read, validate and merge `shared-config.toml` and `versions/<variant>/config.toml`.

Each file is validated on its own first, so an error names the file it is in; then the layers
(shared, the `extends` chain, the variant) are merged by the rules in docs/architecture.md
("The configuration and its merge rules") and validated once more as a whole. `config.json`
in the reference system's JSON format is accepted in place of `config.toml` (one of the two
per place).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepmerge import Merger
from packaging.utils import canonicalize_name
from pydantic import ValidationError

from runenv import _bounded
from runenv._safe_paths import PathRefused, inside
from runenv.config.dependency import dependency_name
from runenv.config.package_json import PACKAGE_JSON, RuntimeArtifact, read_artifact
from runenv.config.project import (
    SHARED_NAMES,
    VARIANT_NAMES,
    VERSIONS_DIR,
    display,
    is_reference_checkout,
    list_variants,
    pick_file,
    variant_folder,
    variant_path,
)
from runenv.config.schema import Config, CopyFile, Layout
from runenv.errors import ConfigError
from runenv.platforms import ALL_PLATFORMS, Platform

_VARIANT_RE = re.compile(
    r"(?P<version>\d+\.\d+\.\d+)?(?:[-_.]?[A-Za-z0-9][A-Za-z0-9._-]*)?", re.ASCII
)
"""A variant name, maybe led by the Python version it runs (`3.12.10-atls`)."""


@dataclass(frozen=True)
class Layer:
    """One config file as read: where it is, the folder its relative paths start from, its data."""

    path: Path
    base: Path
    data: dict[str, Any]
    model: Config


@dataclass(frozen=True)
class ResolvedCopy:
    """A `copyFiles` entry with its source made absolute; `to` may still hold a placeholder."""

    source: Path
    to: str
    declared_in: Path


@dataclass(frozen=True)
class VariantConfig:
    """The merged, validated configuration of one variant."""

    project: Path
    variant: str
    python_version: str
    config: Config
    layers: tuple[Layer, ...]
    copy_files: tuple[ResolvedCopy, ...]
    platform_copy_files: Mapping[Platform, tuple[ResolvedCopy, ...]]

    @property
    def platforms(self) -> tuple[Platform, ...]:
        """`platforms`, else those the variant's package.json has roots for, else all five."""
        if self.config.platforms:
            return tuple(self.config.platforms)
        if self.artifact is not None and self.artifact.roots:
            return tuple(p for p in ALL_PLATFORMS if p in self.artifact.roots)
        return ALL_PLATFORMS

    artifact: RuntimeArtifact | None = None  # the variant's package.json, when it has one

    @property
    def folder(self) -> Path:
        return variant_path(self.project, self.variant)

    @property
    def layout(self) -> Layout:
        """`[runtime] layout`, else by the format the variant is written in (`Runtime.layout`)."""
        chosen = self.config.runtime.layout
        if chosen is not None:
            return chosen
        return Layout.WHEELHOUSE if self.layers[-1].path.suffix == ".json" else Layout.INSTALLED

    @property
    def in_reference_checkout(self) -> bool:
        """Whether the project is a checkout of the reference system, built in place."""
        return is_reference_checkout(self.project)


def _read(project: Path, path: Path) -> dict[str, Any]:
    return read_config_file(path, display(project, path))


def read_config_file(path: Path, shown: str) -> dict[str, Any]:
    """A config file's table, JSON or TOML by its suffix, read within `_bounded`'s limits;
    ConfigError naming `shown` when it cannot be read or parsed, or is not a table."""
    try:
        text = _bounded.read_text(path)
        data = _bounded.loads_json(text) if path.suffix == ".json" else _bounded.loads_toml(text)
    except OSError as exc:
        raise ConfigError(shown, None, f"cannot read: {exc.strerror}") from None
    except _bounded.InputError as exc:
        raise ConfigError(shown, None, str(exc)) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            shown, None, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(shown, None, f"invalid TOML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(shown, None, "the top level must be a table (an object)")
    return data


def _loc(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if item == "[key]":
            continue
        parts.append(f"[{item}]" if isinstance(item, int) else str(item))
    return ".".join(parts).replace(".[", "[")


def _first_error(shown: str, exc: ValidationError) -> ConfigError:
    errors = exc.errors(include_url=False)
    err = errors[0]
    loc = tuple(err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        message = "unknown key"
    elif kind == "enum":
        known = ", ".join(p.value for p in Platform)
        message = f"unknown platform key {err['input']!r} (use one of {known})"
    elif kind == "missing":
        message = "missing required key"
    elif kind == "value_error":
        message = str(err["ctx"]["error"]) if "ctx" in err else err["msg"]
    else:
        message = f"{err['msg'][:1].lower()}{err['msg'][1:]} (got {err['input']!r})"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ConfigError(shown, _loc(loc) or None, message + more)


def _validate(shown: str, data: Mapping[str, Any]) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise _first_error(shown, exc) from None


def load_layer(project: Path, path: Path, base: Path) -> Layer:
    data = _read(project, path)
    return Layer(path, base, data, _validate(display(project, path), data))


def _variant_layers(project: Path, variant: str, chain: tuple[str, ...] = ()) -> list[Layer]:
    """The variant's own file, preceded by the files of the variants it extends."""
    folder = variant_path(project, variant)
    path = pick_file(project, folder, VARIANT_NAMES)
    if path is None:
        shown = display(project, folder)
        raise ConfigError(shown, None, "no config.toml or config.json: run `runenv new`")
    layer = load_layer(project, path, folder)
    parent = layer.model.extends
    if parent is None:
        return [layer]
    shown = display(project, path)
    if parent in (*chain, variant):
        cycle = " -> ".join((*chain, variant, parent))
        raise ConfigError(shown, "extends", f"cycle: {cycle}")
    if parent not in list_variants(project):
        raise ConfigError(shown, "extends", f"no variant {parent!r} under {VERSIONS_DIR}/")
    return [*_variant_layers(project, parent, (*chain, variant)), layer]


# --- merging -----------------------------------------------------------------------------


def _merge_lists(config: Merger, path: list[str], base: list[Any], nxt: list[Any]) -> list[Any]:
    if path == ["packages", "dependencies"]:
        return list(nxt)
    if path == ["registries", "additional"]:
        return list(dict.fromkeys([*base, *nxt]))
    if path == ["platforms"]:
        return list(nxt)
    return [*base, *nxt]


def _merge_dicts(
    config: Merger, path: list[str], base: dict[str, Any], nxt: dict[str, Any]
) -> dict[str, Any]:
    # `packages.buildWheel.<package>.<platform>` is one recipe: a later layer replaces it whole.
    if len(path) == 4 and path[:2] == ["packages", "buildWheel"]:
        return dict(nxt)
    for key, value in nxt.items():
        base[key] = config.value_strategy([*path, key], base[key], value) if key in base else value
    return base


_MERGER = Merger([(list, _merge_lists), (dict, _merge_dicts)], ["override"], ["override"])


def merge_layers(layers: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Merge raw config dicts, first to last, by the rules in docs/architecture.md (later wins)."""
    merged: dict[str, Any] = {}
    for layer in layers:
        data = {k: v for k, v in layer.items() if k != "extends"}
        merged = _MERGER.merge(merged, json.loads(json.dumps(data)))
    return merged


def _resolve_copies(
    project: Path, layer: Layer
) -> tuple[list[ResolvedCopy], dict[Platform, list[ResolvedCopy]]]:
    shown = display(project, layer.path)

    def one(entry: CopyFile, key: str) -> ResolvedCopy:
        try:  # checked as written, component by component (`_safe_paths`)
            source = inside(layer.base, entry.from_)
        except PathRefused as exc:
            raise ConfigError(
                shown, f"{key}.from", f"{exc}: keep it in the variant folder"
            ) from None
        if not source.exists():
            raise ConfigError(shown, f"{key}.from", f"{display(project, source)} does not exist")
        return ResolvedCopy(source, entry.to, layer.path)

    common = [
        one(c, f"packages.copyFiles[{i}]") for i, c in enumerate(layer.model.packages.copyFiles)
    ]
    per: dict[Platform, list[ResolvedCopy]] = {}
    for plat, spec in layer.model.packages.platformSpecific.items():
        per[plat] = [
            one(c, f"packages.platformSpecific.{plat.value}.copyFiles[{i}]")
            for i, c in enumerate(spec.copyFiles)
        ]
    return common, per


def declared_names(config: Config) -> set[str]:
    """Canonical names of every dependency the config declares, on any platform."""
    pkgs = config.packages
    deps = [
        *(pkgs.dependencies or []),
        *(d for s in pkgs.platformSpecific.values() for d in s.dependencies),
    ]
    return {canonicalize_name(dependency_name(d)) for d in deps}


def _check_no_deps(project: Path, layers: list[Layer], config: Config) -> None:
    """`noDeps` may only name declared dependencies (shared-config's may name any)."""
    declared = declared_names(config)
    for layer in layers:
        if layer.path.parent == project:
            continue  # the shared config serves many variants
        for i, name in enumerate(layer.model.packages.noDeps):
            if canonicalize_name(name) not in declared:
                raise ConfigError(
                    display(project, layer.path),
                    f"packages.noDeps[{i}]",
                    f"{name} is not a dependency of this variant (on any platform): "
                    "remove it or add it to packages.dependencies",
                )


def variant_python_version(variant: str, config: Config) -> str | None:
    """`python.version`, else the variant name's leading X.Y.Z."""
    if config.python.version:
        return config.python.version
    match = _VARIANT_RE.fullmatch(variant)
    return match.group("version") if match and match.group("version") else None


def load_variant(project: Path, variant: str) -> VariantConfig:
    """Read, validate and merge every layer of `variant`."""
    folder = variant_folder(project, variant)
    layers: list[Layer] = []
    shared = pick_file(project, project, SHARED_NAMES)
    if shared is not None:
        layer = load_layer(project, shared, folder)
        if layer.model.extends is not None:
            raise ConfigError(display(project, shared), "extends", "only variant files may extend")
        layers.append(layer)
    layers.extend(_variant_layers(project, variant))
    merged = merge_layers([layer.data for layer in layers])
    config = _validate(display(project, layers[-1].path) + " (merged)", merged)

    _check_no_deps(project, layers, config)
    version = variant_python_version(variant, config)
    if version is None:
        raise ConfigError(
            display(project, layers[-1].path),
            "python.version",
            f"variant {variant!r} does not start with X.Y.Z: set python.version",
        )
    copies: list[ResolvedCopy] = []
    per_platform: dict[Platform, list[ResolvedCopy]] = {}
    for layer in layers:
        common, per = _resolve_copies(project, layer)
        copies.extend(common)
        for plat, items in per.items():
            per_platform.setdefault(plat, []).extend(items)
    artifact = None
    if (folder / PACKAGE_JSON).is_file():
        artifact = read_artifact(folder / PACKAGE_JSON, display(project, folder / PACKAGE_JSON))
    return VariantConfig(
        project=project,
        variant=variant,
        artifact=artifact,
        python_version=version,
        config=config,
        layers=tuple(layers),
        copy_files=tuple(copies),
        platform_copy_files={p: tuple(v) for p, v in per_platform.items()},
    )
