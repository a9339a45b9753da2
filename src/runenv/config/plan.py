"""The per-platform plan: what one (variant, platform) build installs, skips, builds and copies."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from runenv.config.dependency import GitDependency, dependency_name, is_git_dependency, parse_git
from runenv.config.load import VariantConfig
from runenv.config.package_json import DEFAULT_BIN_DIR, RuntimeArtifact
from runenv.config.schema import SITE_PACKAGES_PLACEHOLDERS, Layout, Resolution
from runenv.config.values import override_spec
from runenv.errors import ConfigError, UsageError
from runenv.platforms import DEFAULT_MACOS, Platform


@dataclass(frozen=True)
class CopyStep:
    """Copy `source` (a file or a folder's contents) to `dest`, relative to the runtime root."""

    source: Path
    dest: PurePosixPath


@dataclass(frozen=True)
class SourcePolicy:
    """`packages.resolution` for one platform: the shared, variant and platform layers merged.

    Lists are unions of canonical names; booleans come from the most specific layer that sets
    them (platformSpecific over the package level; a later file over an earlier one).
    """

    allow_all: bool = False
    strict_missing: bool = False
    allow: frozenset[str] = frozenset()
    force_no_binary: frozenset[str] = frozenset()
    only_binary: frozenset[str] = frozenset()

    def may_build(self, name: str) -> bool:
        """Whether the policy lets `name` be built from source when no wheel fits."""
        key = canonicalize_name(name)
        if key in self.only_binary:
            return False
        return self.allow_all or key in self.allow or key in self.force_no_binary

    def to_json(self) -> dict[str, Any]:
        return {
            "allowSourceAll": self.allow_all,
            "strictMissing": self.strict_missing,
            "allowSourceList": sorted(self.allow),
            "forceNoBinaryList": sorted(self.force_no_binary),
            "onlyBinaryList": sorted(self.only_binary),
        }


def _policy(base: Resolution | None, specific: Resolution | None) -> SourcePolicy | None:
    layers = [r for r in (base, specific) if r is not None]
    if not layers:
        return None

    def names(key: str) -> frozenset[str]:
        return frozenset(canonicalize_name(n) for r in layers for n in getattr(r, key))

    def flag(key: str) -> bool:
        values = [getattr(r, key) for r in layers if getattr(r, key) is not None]
        return bool(values[-1]) if values else False

    return SourcePolicy(
        allow_all=flag("allowSourceAll"),
        strict_missing=flag("strictMissing"),
        allow=names("allowSourceList"),
        force_no_binary=names("forceNoBinaryList"),
        only_binary=names("onlyBinaryList"),
    )


@dataclass(frozen=True)
class BuildRecipe:
    """`packages.buildWheel.<package>.<platform>`: build requirements and PEP 517 settings."""

    reason: str
    build_requires: tuple[str, ...] = ()
    config_settings: tuple[tuple[str, str], ...] = ()  # in order; a key may repeat

    def settings(self) -> dict[str, str | list[str]]:
        """The settings as PEP 517's `config_settings` (a repeated key becomes a list)."""
        out: dict[str, str | list[str]] = {}
        for key, value in self.config_settings:
            if key in out:
                prev = out[key]
                out[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
            else:
                out[key] = value
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "buildRequires": list(self.build_requires),
            "configSettings": [f"{k}={v}" for k, v in self.config_settings],
        }


def _settings(raw: list[str] | dict[str, str | list[str]]) -> tuple[tuple[str, str], ...]:
    if isinstance(raw, dict):
        return tuple(
            (k, v) for k, vs in raw.items() for v in (vs if isinstance(vs, list) else [vs])
        )
    pairs = (item.partition("=") for item in raw)
    return tuple((k.strip(), v) for k, _, v in pairs)


@dataclass(frozen=True)
class Plan:
    """Everything a build of (variant, platform) needs to know from the configuration."""

    variant: str
    platform: Platform
    python_version: str
    requirements: tuple[str, ...]
    overrides: tuple[str, ...]  # uv overrides: `name<spec>`, replacing every range on `name`
    skipped: dict[str, str]  # canonical package name -> reason
    force_source: dict[str, str]  # canonical package name -> reason
    copy_files: tuple[CopyStep, ...]
    registries: tuple[str, ...]
    runtime_env: dict[str, str]
    allow_import_failures: dict[str, str]
    glibc: tuple[int, int]
    macos: tuple[int, int] | None
    timeout: int
    parallel_downloads: bool
    enable_logging: bool
    policy: SourcePolicy | None = None  # None: no `resolution` table, any sdist may be built
    build_wheel: dict[str, BuildRecipe] = field(default_factory=dict)  # canonical name ->
    no_deps: frozenset[str] = frozenset()  # canonical names locked without their dependencies
    git: tuple[GitDependency, ...] = ()
    compile_bytecode: bool = True
    compile_test_bytecode: bool = False  # test suites too (`bytecode_compiler.is_test_suite`)
    layout: Layout = Layout.INSTALLED  # what the runtime holds (`config.Layout`)
    bin_dir: PurePosixPath = DEFAULT_BIN_DIR  # a wheelhouse runtime's `<bin_dir>/python`
    root: Path | None = None  # where the tree is built, when not pydist/ (a reference checkout)

    @property
    def interpreter(self) -> PurePosixPath:
        return self.platform.info.interpreter(self.python_version)

    @property
    def site_packages(self) -> PurePosixPath:
        return self.platform.info.site_packages(self.python_version)

    def to_json(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "platform": self.platform.value,
            "python_version": self.python_version,
            "interpreter": str(self.interpreter),
            "site_packages": str(self.site_packages),
            "requirements": list(self.requirements),
            "overrides": list(self.overrides),
            "skipped": dict(self.skipped),
            "force_source": dict(self.force_source),
            "resolution": self.policy.to_json() if self.policy else None,
            "build_wheel": {k: v.to_json() for k, v in self.build_wheel.items()},
            "no_deps": sorted(self.no_deps),
            "git": [g.requirement for g in self.git],
            "copy_files": [
                {"from": str(c.source), "to": c.dest.as_posix()} for c in self.copy_files
            ],
            "registries": list(self.registries),
            "runtime_env": dict(self.runtime_env),
            "allow_import_failures": dict(self.allow_import_failures),
            "glibc": ".".join(map(str, self.glibc)),
            "macos": ".".join(map(str, self.macos)) if self.macos else None,
            "compile_bytecode": self.compile_bytecode,
            "compile_test_bytecode": self.compile_test_bytecode,
            "layout": self.layout.value,
            "bin_dir": self.bin_dir.as_posix(),
            "root": str(self.root) if self.root else None,
        }


def _resolve_dest(to: str, site_packages: PurePosixPath) -> PurePosixPath:
    for placeholder in SITE_PACKAGES_PLACEHOLDERS:
        to = to.replace(placeholder, str(site_packages))
    parts = [p for p in PurePosixPath(to.replace("\\", "/")).parts if p not in ("", ".")]
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _version_tuple(value: str) -> tuple[int, int]:
    major, minor = value.split(".")[:2]
    return int(major), int(minor)


def make_plan(vc: VariantConfig, platform: Platform) -> Plan:
    """The plan for one platform of a merged variant config."""
    if platform not in vc.platforms:
        allowed = ", ".join(p.value for p in vc.platforms)
        raise UsageError(
            f"variant {vc.variant} is not built for {platform.value} (its platforms: {allowed})"
        )
    cfg = vc.config
    pkgs = cfg.packages
    deps = list(pkgs.dependencies or [])
    extra = pkgs.platformSpecific.get(platform)
    if extra:
        deps.extend(extra.dependencies)

    overrides = {canonicalize_name(k): override_spec(v) for k, v in pkgs.overrides.items()}
    skipped: dict[str, str] = {
        canonicalize_name(name): by_plat[platform]
        for name, by_plat in pkgs.skip.items()
        if platform in by_plat
    }
    force_source: dict[str, str] = {
        canonicalize_name(name): by_plat[platform]
        for name, by_plat in pkgs.forceSource.items()
        if platform in by_plat
    }

    policy = _policy(pkgs.resolution, extra.resolution if extra else None)
    build_wheel: dict[str, BuildRecipe] = {
        canonicalize_name(name): BuildRecipe(
            by_plat[platform].reason or "packages.buildWheel",
            tuple(by_plat[platform].buildRequires),
            _settings(by_plat[platform].configSettings),
        )
        for name, by_plat in pkgs.buildWheel.items()
        if platform in by_plat
    }
    for built, recipe in build_wheel.items():
        force_source.setdefault(built, f"packages.buildWheel: {recipe.reason}")
    for forced in sorted(policy.force_no_binary if policy else ()):
        force_source.setdefault(forced, "packages.resolution.forceNoBinaryList")

    requirements: list[str] = []
    git: list[GitDependency] = []
    seen: set[NormalizedName] = set()
    for dep in deps:
        name = canonicalize_name(dependency_name(dep))
        if name in skipped:
            continue
        if name in seen:
            raise ConfigError(
                _shown(vc),
                "packages.dependencies",
                f"{dependency_name(dep)} is listed twice for {platform.value}",
            )
        seen.add(name)
        if is_git_dependency(dep):
            ref = parse_git(dep)
            if policy is not None and not (policy.may_build(name) or name in build_wheel):
                raise ConfigError(
                    _declared_in(vc, dep),
                    "packages.dependencies",
                    f"{dep.strip()} is built from source, which packages.resolution does not "
                    f"allow on {platform.value}: add {ref.name} to "
                    "packages.resolution.allowSourceList",
                )
            git.append(ref)
            requirements.append(dep.strip())
            continue
        req = Requirement(dep)
        if name in overrides:
            extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
            marker = f"; {req.marker}" if req.marker else ""
            dep = f"{req.name}{extras}{overrides[name]}{marker}"
        requirements.append(dep)
    # uv overrides: each replaces every requirement on its package, direct or transitive.
    override_lines = tuple(
        f"{name}{spec}" for name, spec in overrides.items() if name not in skipped
    )
    no_deps = frozenset(canonicalize_name(n) for n in pkgs.noDeps) & seen

    site = platform.info.site_packages(vc.python_version)
    copies = (*vc.copy_files, *vc.platform_copy_files.get(platform, ()))
    steps = tuple(CopyStep(c.source, _resolve_dest(c.to, site)) for c in copies)

    macos: tuple[int, int] | None = None
    if platform.info.os == "macos":
        configured = cfg.check.macos.get(platform)
        macos = _version_tuple(configured) if configured else DEFAULT_MACOS[platform]
    return Plan(
        variant=vc.variant,
        platform=platform,
        python_version=vc.python_version,
        requirements=tuple(requirements),
        overrides=override_lines,
        skipped=skipped,
        force_source=force_source,
        copy_files=steps,
        registries=tuple(cfg.registries.additional),
        # package.json's envVars, then `[runtime] env` (runenv's own key) over them
        runtime_env={**(vc.artifact.env_vars if vc.artifact else {}), **cfg.runtime.env},
        allow_import_failures=dict(cfg.check.allowImportFailures),
        glibc=_version_tuple(cfg.check.glibc),
        macos=macos,
        timeout=cfg.build.timeout,
        parallel_downloads=cfg.build.parallelDownloads,
        enable_logging=cfg.build.enableLogging,
        compile_bytecode=cfg.build.compileBytecode,
        compile_test_bytecode=cfg.build.compileTestBytecode,
        layout=vc.layout,
        bin_dir=vc.artifact.bin_dir if vc.artifact else DEFAULT_BIN_DIR,
        root=_root(vc, platform),
        policy=policy,
        build_wheel=build_wheel,
        no_deps=no_deps,
        git=tuple(git),
    )


def _root(vc: VariantConfig, platform: Platform) -> Path | None:
    """A reference checkout's tree goes where its `package.json` says `pl-pkg` packs it."""
    if not vc.in_reference_checkout:
        return None
    artifact = vc.artifact or RuntimeArtifact()
    return vc.folder.joinpath(*artifact.root(platform).parts)


def _shown(vc: VariantConfig) -> str:
    path = vc.layers[-1].path
    return path.relative_to(vc.project).as_posix() if path.is_relative_to(vc.project) else str(path)


def _declared_in(vc: VariantConfig, dep: str) -> str:
    """The file (relative to the project) whose dependencies list holds `dep`."""
    for layer in reversed(vc.layers):
        pkgs = layer.model.packages
        lists = [pkgs.dependencies or [], *(s.dependencies for s in pkgs.platformSpecific.values())]
        if any(dep in deps for deps in lists):
            path = layer.path
            return (
                path.relative_to(vc.project).as_posix()
                if path.is_relative_to(vc.project)
                else str(path)
            )
    return _shown(vc)
