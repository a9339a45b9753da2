"""The per-platform plan: what one (variant, platform) build installs, skips, builds and copies."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from runenv.config import SITE_PACKAGES_PLACEHOLDERS, VariantConfig, override_spec
from runenv.errors import ConfigError, UsageError
from runenv.platforms import DEFAULT_MACOS, Platform


@dataclass(frozen=True)
class CopyStep:
    """Copy `source` (a file or a folder's contents) to `dest`, relative to the runtime root."""

    source: Path
    dest: PurePosixPath


@dataclass(frozen=True)
class Plan:
    """Everything a build of (variant, platform) needs to know from the configuration."""

    variant: str
    platform: Platform
    python_version: str
    requirements: tuple[str, ...]
    constraints: tuple[str, ...]
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
    compile_bytecode: bool = True

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
            "constraints": list(self.constraints),
            "skipped": dict(self.skipped),
            "force_source": dict(self.force_source),
            "copy_files": [
                {"from": str(c.source), "to": c.dest.as_posix()} for c in self.copy_files
            ],
            "registries": list(self.registries),
            "runtime_env": dict(self.runtime_env),
            "allow_import_failures": dict(self.allow_import_failures),
            "glibc": ".".join(map(str, self.glibc)),
            "macos": ".".join(map(str, self.macos)) if self.macos else None,
            "compile_bytecode": self.compile_bytecode,
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

    requirements: list[str] = []
    seen: set[NormalizedName] = set()
    for dep in deps:
        req = Requirement(dep)
        name = canonicalize_name(req.name)
        if name in skipped:
            continue
        if name in seen:
            raise ConfigError(
                str(vc.layers[-1].path.relative_to(vc.project)),
                "packages.dependencies",
                f"{req.name} is listed twice for {platform.value}",
            )
        seen.add(name)
        if name in overrides:
            extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
            marker = f"; {req.marker}" if req.marker else ""
            dep = f"{req.name}{extras}{overrides[name]}{marker}"
        requirements.append(dep)
    # An override of a package that is not a direct dependency pins it where it is pulled in.
    constraints = tuple(
        f"{name}{spec}"
        for name, spec in overrides.items()
        if name not in seen and name not in skipped
    )

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
        constraints=constraints,
        skipped=skipped,
        force_source=force_source,
        copy_files=steps,
        registries=tuple(cfg.registries.additional),
        runtime_env=dict(cfg.runtime.env),
        allow_import_failures=dict(cfg.check.allowImportFailures),
        glibc=_version_tuple(cfg.check.glibc),
        macos=macos,
        timeout=cfg.build.timeout,
        parallel_downloads=cfg.build.parallelDownloads,
        enable_logging=cfg.build.enableLogging,
        compile_bytecode=cfg.build.compileBytecode,
    )
