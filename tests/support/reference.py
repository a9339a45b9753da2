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
        (folder / "package.json").write_text(json.dumps({"name": f"runenv-python-{name}"}))
        if name.endswith("-atls"):
            for rel, text in PAYLOAD.items():
                path = folder / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    return root
