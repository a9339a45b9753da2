"""A checkout shaped like the reference system (platforma-open/runenv-python-3), for tests.

`write_reference_checkout(root)` writes `shared-config.json` and `python-<variant>/config.json`
folders with the keys, nesting and value forms of that system's published configs (its
`resolution` tables, `buildWheel` recipes with `configSettings`, `noDeps`, a git dependency,
platform-specific dependencies with local versions, `copyFiles` with their payload folders), and
a `package.json` beside each config as the reference has. Reasons are shortened; the package
lists are the published ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ALL = ["linux-x64", "linux-aarch64", "macosx-x64", "macosx-aarch64", "windows-x64"]

SHARED: dict[str, Any] = {
    "registries": {
        "additional": ["https://pypi.nvidia.com", "https://download.pytorch.org/whl/cpu"]
    },
    "packages": {
        "dependencies": ["pandas==2.2.3", "numpy==2.2.6", "scipy==1.15.3", "pyarrow==21.0.0"],
        "skip": {
            "cudf-cu12": {
                "macosx-x64": "CUDA packages not supported on macOS",
                "macosx-aarch64": "CUDA packages not supported on macOS",
                "windows-x64": "CUDA packages not supported on Windows",
                "linux-aarch64": "CUDA packages not supported on Linux ARM64",
            },
            "sccoda": {"linux-aarch64": "Requires TensorFlow and R"},
        },
        "forceSource": {
            "parasail": {
                "linux-aarch64": "parasail has no binary wheels for Linux ARM64",
                "macosx-aarch64": "parasail has no binary wheels for macOS ARM64",
            },
            "pynacl": {"windows-x64": "pynacl often fails to build on Windows, prefer source"},
        },
        "resolution": {
            "allowSourceAll": False,
            "strictMissing": False,
            "allowSourceList": ["sccoda"],
            "forceNoBinaryList": [],
            "onlyBinaryList": ["numpy", "scipy"],
        },
    },
    "build": {"enableLogging": True, "parallelDownloads": False, "timeout": 300},
}


def _wheel_recipe(reason: str, requires: list[str], **extra: Any) -> dict[str, Any]:
    return {"reason": reason, "buildRequires": requires, **extra}


VARIANTS: dict[str, dict[str, Any]] = {
    "3.12.10": {
        "packages": {
            "dependencies": [
                "pandas==2.2.3",
                "numpy==2.2.6",
                "scipy==1.15.3",
                "cudf-cu12==25.6.0",
                "pyarrow==24.0.0",
                "hdbscan==0.8.44",
                "freesasa==2.2.1",
                "atriegc==0.0.4",
            ],
            "overrides": {},
            "forceSource": {"atriegc": {"linux-aarch64": "No atriegc wheel for Linux ARM64"}},
            "buildWheel": {
                "freesasa": {
                    p: _wheel_recipe(f"No cp312 wheel for {p}", ["setuptools", "wheel"])
                    for p in ALL
                },
                "hdbscan": {
                    "linux-aarch64": _wheel_recipe(
                        "No cp312 / Linux ARM64 wheel", ["setuptools", "wheel", "Cython", "numpy"]
                    )
                },
            },
        }
    },
    "3.10.11": {"packages": {"dependencies": ["pandas==2.0.3", "numpy==1.24.3"], "overrides": {}}},
    "3.12.10-empty": {"packages": {"dependencies": ["pip==25.3"], "overrides": {}}},
    "3.12.10-atls": {
        "registries": {"additional": ["https://download.pytorch.org/whl/cpu"]},
        "packages": {
            "dependencies": ["biopython==1.85", "torch==2.7.0", "ImmuneBuilder==1.2"],
            "skip": {
                "torch": {p: "Not required on this platform" for p in ALL[1:3] + ALL[4:]},
                "ImmuneBuilder": {p: "Only required on darwin-arm64" for p in ALL if p != ALL[3]},
            },
            "platformSpecific": {
                p: {
                    "copyFiles": [
                        {"from": f"{p}/bin/", "to": "bin/"},
                        {"from": f"{p}/site-packages/", "to": "{site-packages}/"},
                    ]
                }
                for p in ("linux-x64", "macosx-aarch64")
            },
        },
    },
    "3.12.10-parapred": {
        "packages": {
            "dependencies": [
                "numpy==2.2.6",
                "click==8.1.8",
                "git+https://github.com/alchemab/parapred-pytorch.git@e0548be",
            ],
            "noDeps": ["parapred-pytorch"],
            "skip": {},
            "overrides": {},
            "platformSpecific": {},
            "resolution": {"allowSourceList": ["parapred-pytorch"]},
        }
    },
    "3.12.10-clustering": {
        "packages": {
            "dependencies": ["pandas==2.2.3", "kalign-python==3.6.0"],
            "skip": {},
            "overrides": {},
            "platformSpecific": {},
            "buildWheel": {
                "kalign-python": {
                    "linux-aarch64": _wheel_recipe(
                        "No PyPI wheel for Linux ARM64",
                        ["scikit-build-core>=0.11.4", "pybind11>=2.12", "cmake>=3.18", "ninja"],
                    ),
                    "windows-x64": _wheel_recipe(
                        "No PyPI wheel for Windows",
                        ["scikit-build-core>=0.11.4", "pybind11>=2.12", "cmake>=3.18", "ninja"],
                        configSettings=[
                            "cmake.define.USE_THREADPOOL=OFF",
                            "cmake.define.CMAKE_C_FLAGS_RELEASE=/O1",
                            "build.verbose=true",
                        ],
                    ),
                }
            },
        }
    },
    "3.12.10-antibody-design": {
        "packages": {
            "dependencies": ["biopython==1.83", "numpy==1.26.4", "scipy==1.16.3"],
            "noDeps": ["biopython", "scipy", "torch"],
            "skip": {},
            "overrides": {},
            "platformSpecific": {
                "linux-x64": {"dependencies": ["torch==2.2.2+cpu"]},
                **{p: {"dependencies": ["torch==2.2.2"]} for p in ALL[1:]},
            },
            "resolution": {"strictMissing": False},
            "forceSource": {},
            "buildWheel": {
                "biotite": {
                    "linux-aarch64": _wheel_recipe(
                        "no Linux ARM64 wheel", ["setuptools", "wheel", "Cython", "numpy==1.26.4"]
                    )
                }
            },
        }
    },
    "3.12.10-embedding-clustering": {
        "packages": {
            "dependencies": ["numpy==2.2.6", "hdbscan==0.8.44"],
            "noDeps": ["numpy", "hdbscan", "numba", "llvmlite"],
            "skip": {},
            "overrides": {},
            "platformSpecific": {
                p: {"dependencies": ["numba==0.67.0", "llvmlite==0.49.0"]} for p in ALL
            },
            "resolution": {"strictMissing": True},
            "buildWheel": {},
        }
    },
    "3.12.10-torch-cuda": {
        "registries": {"additional": ["https://download.pytorch.org/whl/cu126"]},
        "packages": {
            "dependencies": ["numpy==2.2.6"],
            "platformSpecific": {
                "linux-x64": {"dependencies": ["torch==2.7.0+cu126"]},
                "macosx-aarch64": {"dependencies": ["torch==2.7.0"]},
            },
        },
    },
}

PAYLOAD = {
    "linux-x64/bin/anarci": "#!/bin/sh\necho anarci\n",
    "linux-x64/site-packages/anarci_data/__init__.py": "NAME = 'linux'\n",
    "macosx-aarch64/bin/anarci": "#!/bin/sh\necho anarci\n",
    "macosx-aarch64/site-packages/anarci_data/__init__.py": "NAME = 'mac'\n",
}


def package_json(name: str, config: dict[str, Any]) -> dict[str, Any]:
    """A variant's `package.json` as the reference publishes it: npm's fields and the runtime
    artifact (`roots` per platform, `binDir`, `envVars`)."""
    platforms = config.get("platforms") or ALL
    artifact = {
        "type": "environment",
        "runtime": "python",
        "registry": "platforma-open",
        "python-version": name.split("-")[0],
        "envVars": ["PYTHONUNBUFFERED=1"],
        "roots": {p: f"./pydist/{p}" for p in platforms},
        "binDir": "bin",
    }
    return {
        "name": f"@platforma-open/milaboratories.runenv-python-{name}",
        "version": "1.0.0",
        "scripts": {"build": "pl-py-builder"},
        "files": ["dist/"],
        "block-software": {"entrypoints": {"main": {"environment": {"artifact": artifact}}}},
    }


def write_reference_checkout(
    root: Path,
    shared: dict[str, Any] | None = None,
    variants: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """Write a reference-shaped checkout under `root` and return `root`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "shared-config.json").write_text(json.dumps(shared or SHARED, indent=2) + "\n")
    (root / "package.json").write_text('{"name": "runenv-python-3", "private": true}\n')
    for name, config in (VARIANTS if variants is None else variants).items():
        folder = root / f"python-{name}"
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        (folder / "package.json").write_text(json.dumps(package_json(name, config), indent=2))
        if name.endswith("-atls"):
            for rel, text in PAYLOAD.items():
                path = folder / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    return root


# --------------------------------------------------------------------------- a package index

RTRECIPE_BACKEND = '''\
"""An in-tree PEP 517 backend: records the config settings it was given and the build
requirement only the buildWheel recipe installs, then lets setuptools build the wheel."""
import json
import pathlib

from setuptools import build_meta as _setuptools
from setuptools.build_meta import build_sdist, get_requires_for_build_sdist  # noqa: F401


def get_requires_for_build_wheel(config_settings=None):
    return _setuptools.get_requires_for_build_wheel(None)


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    return _setuptools.prepare_metadata_for_build_wheel(metadata_directory, None)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    import rtdep  # present only when the recipe's buildRequires were installed

    record = {"settings": config_settings, "rtdep": rtdep.VALUE}
    pathlib.Path("rtrecipe", "built.json").write_text(json.dumps(record, sort_keys=True))
    return _setuptools.build_wheel(wheel_directory, None, metadata_directory)
'''


def _pure_sdist(out: Path, name: str, version: str, body: str) -> Path:
    from support.index import _pyproject, write_sdist

    files = {
        "pyproject.toml": _pyproject(name, version).encode(),
        f"{name}/__init__.py": body.encode(),
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
    }
    return write_sdist(out, name, version, files)


def build_reference_index(root: Path, base: Path) -> Path:
    """The test index (`base`, a built `support.index` root) plus the packages these tests need.

    - rtarrow 1.0 / 2.0 (pure wheels) and rtcudf 1.0, whose wheel requires `rtarrow>=1.0,<2`: a
      variant pinning `rtarrow==2.0` beside `rtcudf==1.0` conflicts unless it overrides rtarrow.
    - rtpuresrc 1.0: sdist only, pure Python: its built wheel is `py3-none-any`.
    - rtrecipe 1.0: sdist only, with an in-tree backend that needs `rtdep` at build time and
      writes the PEP 517 config settings it received into the package (`rtrecipe/built.json`).
    """
    import shutil

    from support.index import _metadata, write_simple_pages, write_wheel

    if (root / ".complete").is_file():
        return root
    files = root / "files"
    shutil.copytree(base / "files", files)
    for version in ("1.0", "2.0"):
        write_wheel(
            files, "rtarrow", version,
            {"rtarrow/__init__.py": f"VERSION = {version!r}\n".encode()},
            metadata=_metadata("rtarrow", version),
        )  # fmt: skip
    write_wheel(
        files, "rtcudf", "1.0", {"rtcudf/__init__.py": b"import rtarrow\n"},
        metadata=_metadata("rtcudf", "1.0", requires=["rtarrow>=1.0,<2"]),
    )  # fmt: skip
    _pure_sdist(files, "rtpuresrc", "1.0", "HELLO = 'pure from source'\n")
    pyproject = (
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "_backend"\n'
        'backend-path = ["."]\n\n[project]\nname = "rtrecipe"\nversion = "1.0"\n'
        'requires-python = ">=3.8"\n\n[tool.setuptools]\npackages = ["rtrecipe"]\n'
        '[tool.setuptools.package-data]\nrtrecipe = ["built.json"]\n'
    )
    from support.index import write_sdist

    write_sdist(
        files,
        "rtrecipe",
        "1.0",
        {
            "pyproject.toml": pyproject.encode(),
            "_backend.py": RTRECIPE_BACKEND.encode(),
            "rtrecipe/__init__.py": b"",
            "PKG-INFO": b"Metadata-Version: 2.1\nName: rtrecipe\nVersion: 1.0\n",
        },
    )
    write_simple_pages(root)
    (root / ".complete").write_text("1")
    return root


def make_git_repo(path: Path, name: str = "rtgit", version: str = "0.3") -> str:
    """A git repository holding a pure-Python project; returns its full HEAD commit hash."""
    import subprocess

    pkg = path / "src" / name
    pkg.mkdir(parents=True)
    (path / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "{name}"\nversion = "{version}"\ndependencies = ["rtdep>=1"]\n'
    )
    (pkg / "__init__.py").write_text(f"FROM = 'git {name}'\n")
    git = ["git", "-C", str(path), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    return subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
