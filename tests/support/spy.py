"""Counting what a module hashes, to tell a stat-only check from one that reads every byte."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest


def spy_hashing(monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> list[Path]:
    """Wrap `module.file_sha256`: it still hashes, and each path it hashes is appended to the
    list returned (`hashed.clear()` between steps)."""
    hashed: list[Path] = []
    real = module.file_sha256

    def counting(path: Path) -> str:
        hashed.append(path)
        result: str = real(path)
        return result

    monkeypatch.setattr(module, "file_sha256", counting)
    return hashed
