"""Configuration: reading, the merge table row by row, validation errors, the plan, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runenv.cli import main
from runenv.config.load import load_variant
from runenv.config.plan import make_plan
from runenv.errors import ConfigError, UsageError
from runenv.platforms import ALL_PLATFORMS, Platform
from support.cli import run_main

REPO = Path(__file__).resolve().parents[1]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def project(tmp_path: Path, shared: str | None, **variants: str) -> Path:
    """A project with `shared-config.toml` and one `config.toml` per variant (`_` -> `-`)."""
    if shared is not None:
        write(tmp_path / "shared-config.toml", shared)
    (tmp_path / "versions").mkdir(exist_ok=True)
    for name, text in variants.items():
        write(tmp_path / "versions" / name.replace("_", "-") / "config.toml", text)
    return tmp_path


def plan_of(root: Path, variant: str, platform: Platform = Platform.LINUX_X64):
    return make_plan(load_variant(root, variant), platform)


# --- the merge table ---------------------------------------------------------------------


def test_registries_concatenated_deduplicated_in_order(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        '[registries]\nadditional = ["https://a.example/simple", "https://b.example/simple"]\n',
        **{
            "3.12.10": '[registries]\nadditional = ["https://c.example/simple", '
            '"https://a.example/simple"]\n'
        },
    )
    assert plan_of(root, "3.12.10").registries == (
        "https://a.example/simple",
        "https://b.example/simple",
        "https://c.example/simple",
    )


def test_variant_dependencies_replace_shared(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        '[packages]\ndependencies = ["numpy==2.2.6", "pandas==2.2.3"]\n',
        **{"3.12.10": '[packages]\ndependencies = ["scipy==1.15.3"]\n'},
    )
    assert plan_of(root, "3.12.10").requirements == ("scipy==1.15.3",)


def test_absent_dependencies_use_shared(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        '[packages]\ndependencies = ["numpy==2.2.6", "pandas==2.2.3"]\n',
        **{"3.12.10": "[build]\ntimeout = 10\n"},
    )
    assert plan_of(root, "3.12.10").requirements == ("numpy==2.2.6", "pandas==2.2.3")


def test_overrides_merge_per_package_and_replace_pins(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        """
        [packages]
        dependencies = ["numpy==2.2.6", "pandas[performance]==2.2.3; python_version >= '3.9'",
                        "scipy==1.15.3"]
        overrides = { numpy = "2.1.3", scipy = "1.14.0" }
        """,
        **{"3.12.10": '[packages.overrides]\nscipy = ">=1.13,<1.14"\nurllib3 = "2.2.0"\n'},
    )
    plan = plan_of(root, "3.12.10")
    assert plan.requirements == (
        "numpy==2.1.3",
        "pandas[performance]==2.2.3; python_version >= '3.9'",
        "scipy>=1.13,<1.14",
    )
    # Every override goes to uv's --overrides: it replaces the package's ranges everywhere.
    assert plan.overrides == ("numpy==2.1.3", "scipy>=1.13,<1.14", "urllib3==2.2.0")


def test_skip_and_force_source_merge_per_package_and_platform(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        """
        [packages]
        dependencies = ["cudf-cu12==24.4", "parasail==1.3.4", "numpy==2.2.6"]
        [packages.skip.cudf-cu12]
        macosx-aarch64 = "no CUDA on macOS"
        [packages.forceSource.parasail]
        linux-aarch64 = "no wheels"
        """,
        **{
            "3.12.10": """
            [packages.skip.cudf-cu12]
            windows-x64 = "no CUDA on Windows"
            [packages.skip.numpy]
            linux-aarch64 = "variant says so"
            [packages.forceSource.parasail]
            macosx-aarch64 = "no wheels either"
            """
        },
    )
    vc = load_variant(root, "3.12.10")
    mac = make_plan(vc, Platform.MACOSX_AARCH64)
    win = make_plan(vc, Platform.WINDOWS_X64)
    arm = make_plan(vc, Platform.LINUX_AARCH64)
    assert mac.skipped == {"cudf-cu12": "no CUDA on macOS"}
    assert win.skipped == {"cudf-cu12": "no CUDA on Windows"}
    assert "cudf-cu12==24.4" not in mac.requirements and "cudf-cu12==24.4" not in win.requirements
    assert arm.skipped == {"numpy": "variant says so"}
    assert arm.requirements == ("cudf-cu12==24.4", "parasail==1.3.4")
    assert arm.force_source == {"parasail": "no wheels"}
    assert mac.force_source == {"parasail": "no wheels either"}
    assert make_plan(vc, Platform.LINUX_X64).force_source == {}


def test_copy_files_concatenated(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        '[[packages.copyFiles]]\nfrom = "common/"\nto = "share/"\n',
        **{
            "3.12.10": """
            [[packages.copyFiles]]
            from = "extra.txt"
            to = "{site-packages}/extra.txt"
            [[packages.platformSpecific.linux-x64.copyFiles]]
            from = "linux-x64/bin/"
            to = "bin/"
            [[packages.platformSpecific.windows-x64.copyFiles]]
            from = "win/"
            to = "<site-packages>/win/"
            """
        },
    )
    folder = root / "versions" / "3.12.10"
    for rel in ("common/a.txt", "extra.txt", "linux-x64/bin/tool", "win/w.txt"):
        write(folder / rel, "x")
    vc = load_variant(root, "3.12.10")
    linux = make_plan(vc, Platform.LINUX_X64)
    assert [(c.source.relative_to(folder).as_posix(), str(c.dest)) for c in linux.copy_files] == [
        ("common", "share"),
        ("extra.txt", "lib/python3.12/site-packages/extra.txt"),
        ("linux-x64/bin", "bin"),
    ]
    win = make_plan(vc, Platform.WINDOWS_X64)
    assert [str(c.dest) for c in win.copy_files] == [
        "share",
        "Lib/site-packages/extra.txt",
        "Lib/site-packages/win",
    ]


def test_platform_specific_dependencies_are_added(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        """
        [packages]
        dependencies = ["numpy==2.2.6"]
        [packages.platformSpecific.linux-x64]
        dependencies = ["nvidia-ml-py==12.560.30"]
        """,
        **{
            "3.12.10": """
            [packages.platformSpecific.linux-x64]
            dependencies = ["pynvml==11.5.3"]
            [packages.platformSpecific.windows-x64]
            dependencies = ["pywin32==306"]
            """
        },
    )
    vc = load_variant(root, "3.12.10")
    assert make_plan(vc, Platform.LINUX_X64).requirements == (
        "numpy==2.2.6",
        "nvidia-ml-py==12.560.30",
        "pynvml==11.5.3",
    )
    assert make_plan(vc, Platform.WINDOWS_X64).requirements == ("numpy==2.2.6", "pywin32==306")
    assert make_plan(vc, Platform.MACOSX_X64).requirements == ("numpy==2.2.6",)


def test_build_settings_and_scalars_later_wins(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        "[build]\nenableLogging = false\nparallelDownloads = false\ntimeout = 300\n",
        **{"3.12.10": '[build]\ntimeout = 42\n[python]\nversion = "3.12.9"\n'},
    )
    plan = plan_of(root, "3.12.10")
    assert (plan.timeout, plan.enable_logging, plan.parallel_downloads) == (42, False, False)
    assert plan.python_version == "3.12.9"


def test_compile_bytecode_on_by_default_merges_as_a_scalar(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        "[build]\ncompileBytecode = false\n",
        **{"3.12.10": "", "3.12.10_on": "[build]\ncompileBytecode = true\n"},
    )
    assert plan_of(root, "3.12.10").compile_bytecode is False
    assert plan_of(root, "3.12.10-on").compile_bytecode is True
    (tmp_path / "d").mkdir()
    assert plan_of(project(tmp_path / "d", None, **{"3.11.7": ""}), "3.11.7").compile_bytecode
    # (tests/test_build_hash.py checks that it changes the build hash)


def test_defaults_without_shared_config(tmp_path: Path) -> None:
    root = project(tmp_path, None, **{"3.11.7": ""})
    vc = load_variant(root, "3.11.7")
    assert vc.platforms == ALL_PLATFORMS
    plan = make_plan(vc, Platform.LINUX_X64)
    assert (plan.timeout, plan.enable_logging, plan.parallel_downloads) == (300, True, True)
    assert plan.requirements == () and plan.glibc == (2, 28)


def test_extends_chain_in_order(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        '[packages]\ndependencies = ["numpy==2.2.6"]\n[build]\ntimeout = 1\n',
        **{
            "3.12.10": '[packages]\ndependencies = ["pandas==2.2.3"]\n[build]\ntimeout = 2\n'
            '[registries]\nadditional = ["https://a.example/simple"]\n',
            "3.12.10_mid": 'extends = "3.12.10"\n[build]\ntimeout = 3\n',
            "3.12.10_top": 'extends = "3.12.10-mid"\n'
            '[registries]\nadditional = ["https://b.example/simple"]\n',
        },
    )
    plan = plan_of(root, "3.12.10-top")
    assert plan.requirements == ("pandas==2.2.3",)
    assert plan.timeout == 3
    assert plan.registries == ("https://a.example/simple", "https://b.example/simple")


def test_platforms_restrict_variant(tmp_path: Path) -> None:
    root = project(tmp_path, None, **{"3.12.10": 'platforms = ["linux-x64", "macosx-aarch64"]\n'})
    vc = load_variant(root, "3.12.10")
    assert vc.platforms == (Platform.LINUX_X64, Platform.MACOSX_AARCH64)
    with pytest.raises(UsageError, match="not built for windows-x64"):
        make_plan(vc, Platform.WINDOWS_X64)


def test_plan_layout_and_check_settings(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        None,
        **{
            "3.10.11": """
            [check]
            glibc = "2.31"
            macos = { macosx-aarch64 = "12.0" }
            allowImportFailures = { "tkinter" = "no Tk in the runtime" }
            [runtime]
            env = { RPY2_CFFI_MODE = "ABI" }
            """
        },
    )
    vc = load_variant(root, "3.10.11")
    linux = make_plan(vc, Platform.LINUX_AARCH64)
    assert (str(linux.interpreter), str(linux.site_packages)) == (
        "bin/python3",
        "lib/python3.10/site-packages",
    )
    assert linux.glibc == (2, 31) and linux.macos is None
    assert linux.runtime_env == {"RPY2_CFFI_MODE": "ABI"}
    assert linux.allow_import_failures == {"tkinter": "no Tk in the runtime"}
    assert make_plan(vc, Platform.MACOSX_AARCH64).macos == (12, 0)
    assert make_plan(vc, Platform.MACOSX_X64).macos == (10, 13)
    win = make_plan(vc, Platform.WINDOWS_X64)
    assert (str(win.interpreter), str(win.site_packages)) == ("python.exe", "Lib/site-packages")


# --- the reference README's JSON examples ------------------------------------------------

REFERENCE_SHARED = """
{
  "registries": {
    "additional": ["https://pypi.nvidia.com"]
  },
  "packages": {
    "dependencies": [
      "pandas==2.2.3",
      "numpy==2.2.6",
      "scipy==1.15.3"
    ],
    "skip": {
      "cudf-cu12": {
        "macosx-x64": "CUDA packages not supported on macOS",
        "macosx-aarch64": "CUDA packages not supported on macOS",
        "windows-x64": "CUDA packages not supported on Windows"
      }
    },
    "forceSource": {
      "parasail": {
        "linux-aarch64": "parasail has no binary wheels for Linux ARM64",
        "macosx-aarch64": "parasail has no binary wheels for macOS ARM64"
      }
    }
  },
  "build": {
    "enableLogging": true,
    "parallelDownloads": false,
    "timeout": 300
  }
}
"""

REFERENCE_ATLS = """
{
  "packages": {
    "dependencies": [
      "torch==2.7.0",
      "ImmuneBuilder==1.2"
    ],
    "platformSpecific": {
      "linux-x64": {
        "copyFiles": [
          { "from": "linux-x64/bin/", "to": "bin/" },
          { "from": "linux-x64/site-packages/", "to": "{site-packages}/" }
        ]
      },
      "macosx-aarch64": {
        "copyFiles": [
          { "from": "macosx-aarch64/bin/", "to": "bin/" },
          { "from": "macosx-aarch64/site-packages/", "to": "{site-packages}/" }
        ]
      }
    }
  }
}
"""


def test_reference_json_examples_load_and_merge(tmp_path: Path) -> None:
    write(tmp_path / "shared-config.json", REFERENCE_SHARED)
    folder = tmp_path / "versions" / "3.12.10-atls"
    write(folder / "config.json", REFERENCE_ATLS)
    for plat in ("linux-x64", "macosx-aarch64"):
        write(folder / plat / "bin" / "custom_tool", "#!/bin/sh\necho hi\n")
        write(folder / plat / "site-packages" / "custom_module" / "__init__.py", "X = 1\n")
    vc = load_variant(tmp_path, "3.12.10-atls")
    assert vc.python_version == "3.12.10"
    linux = make_plan(vc, Platform.LINUX_X64)
    assert linux.requirements == ("torch==2.7.0", "ImmuneBuilder==1.2")
    assert linux.registries == ("https://pypi.nvidia.com",)
    assert [str(c.dest) for c in linux.copy_files] == ["bin", "lib/python3.12/site-packages"]
    assert (linux.parallel_downloads, linux.enable_logging, linux.timeout) == (False, True, 300)
    mac = make_plan(vc, Platform.MACOSX_AARCH64)
    assert mac.force_source == {"parasail": "parasail has no binary wheels for macOS ARM64"}
    assert mac.skipped == {"cudf-cu12": "CUDA packages not supported on macOS"}
    assert make_plan(vc, Platform.WINDOWS_X64).copy_files == ()


def test_shipped_variants_load() -> None:
    for variant in ("3.12.10", "3.10.11", "3.12.10-atls"):
        vc = load_variant(REPO, variant)
        for plat in vc.platforms:
            make_plan(vc, plat)
    atls = load_variant(REPO, "3.12.10-atls")
    assert atls.platforms == (Platform.LINUX_X64, Platform.MACOSX_AARCH64)
    atls_linux = make_plan(atls, Platform.LINUX_X64)
    assert "ImmuneBuilder==1.2" in atls_linux.requirements
    assert {"pdbfixer==1.12.0", "anarci==2026.2.13.2", "hmmer==3.4.0.2"} <= set(
        atls_linux.requirements
    )
    old = make_plan(load_variant(REPO, "3.10.11"), Platform.LINUX_X64)
    assert "numpy==1.24.3" in old.requirements


# --- validation errors: one line naming the file and the key ------------------------------

BAD_CONFIGS = [
    ("[packages]\nforceSorce = {}\n", "packages.forceSorce: unknown key"),
    (
        '[packages.skip.foo]\nmacosx-arm64 = "x"\n',
        "packages.skip.foo.macosx-arm64: unknown platform key",
    ),
    ('platforms = ["linux-x86"]\n', "platforms[0]: unknown platform key"),
    (
        '[[packages.platformSpecific.win64.copyFiles]]\nfrom = "a"\nto = "b"\n',
        "packages.platformSpecific.win64: unknown platform key",
    ),
    (
        '[packages]\ndependencies = ["numpy>=>1"]\n',
        "packages.dependencies[0]: malformed requirement",
    ),
    ('[packages]\ndependencies = "numpy"\n', "packages.dependencies: "),
    (
        '[python]\nversion = "3.12"\n',
        "python.version: '3.12' is not a Python version of the form X.Y.Z",
    ),
    (
        '[registries]\nadditional = ["ftp://x.example"]\n',
        "registries.additional[0]: 'ftp://x.example' is not an http(s) URL",
    ),
    ('[registries]\nadditional = ["not a url"]\n', "registries.additional[0]: "),
    ("[build]\ntimeout = -5\n", "build.timeout: "),
    ('[build]\ntimeout = "long"\n', "build.timeout: "),
    ('[build]\nenableLogging = "yes please"\n', "build.enableLogging: "),
    ('[build]\ncompileBytecode = "sometimes"\n', "build.compileBytecode: "),
    ('[packages.overrides]\nnumpy = "not a version!"\n', "packages.overrides.numpy: "),
    (
        '[[packages.copyFiles]]\nfrom = "missing/"\nto = "bin/"\n',
        "packages.copyFiles[0].from: versions/3.12.10/missing does not exist",
    ),
    (
        '[[packages.copyFiles]]\nfrom = "../../shared-config.toml"\nto = "bin/"\n',
        "packages.copyFiles[0].from: ",
    ),
    (
        '[[packages.copyFiles]]\nfrom = "/etc/passwd"\nto = "bin/"\n',
        "packages.copyFiles[0].from: '/etc/passwd' must be a relative path",
    ),
    (
        '[[packages.copyFiles]]\nfrom = "data"\nto = "../outside"\n',
        "packages.copyFiles[0].to: '../outside' leaves the folder",
    ),
    ('[[packages.copyFiles]]\nfrom = "data"\n', "packages.copyFiles[0].to: missing required key"),
    ('extends = "9.9.9"\n', "extends: no variant '9.9.9'"),
    (
        '[python.archives.linux-x64]\nurl = "https://x.example/a.tar.gz"\nsha256 = "abc"\n',
        "python.archives.linux-x64.sha256: ",
    ),
    (
        '[python.archives.linux-x64]\nsha256 = "' + "a" * 64 + '"\n',
        "python.archives.linux-x64: give exactly one of url or path",
    ),
    ("[runtime]\nenv = { A = 1 }\n", "runtime.env.A: "),
    ("platforms = []\n", "platforms: must name at least one platform"),
    ("[packages\n", "invalid TOML"),
    ('[check]\nglibc = "2.5"\n', "check.glibc: "),
]


@pytest.mark.parametrize(("text", "expected"), BAD_CONFIGS)
def test_bad_config_is_one_line_naming_file_and_key(
    tmp_path: Path, text: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path, "", **{"3.12.10": text})
    (root / "versions" / "3.12.10" / "data").mkdir()
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    with pytest.raises(ConfigError) as info:
        load_variant(root, "3.12.10")
    message = str(info.value)
    assert message.startswith("versions/3.12.10/config.toml: ")
    assert expected in message
    assert "\n" not in message
    # The CLI says the same in one line, exit 2, no traceback, and writes nothing.
    code = main(["--project", str(root), "config", "3.12.10", "--platform", "linux-x64"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and expected in err and "Traceback" not in err
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_bad_shared_config_names_shared_file(tmp_path: Path) -> None:
    root = project(tmp_path, "[build]\nparallelDownload = true\n", **{"3.12.10": ""})
    with pytest.raises(
        ConfigError, match=r"^shared-config.toml: build.parallelDownload: unknown key"
    ):
        load_variant(root, "3.12.10")


def test_invalid_json_names_line(tmp_path: Path) -> None:
    write(tmp_path / "versions" / "3.12.10" / "config.json", '{"packages": {"dependencies": [}}')
    with pytest.raises(ConfigError, match=r"config.json: invalid JSON at line 1 column"):
        load_variant(tmp_path, "3.12.10")


def test_toml_and_json_side_by_side_is_an_error(tmp_path: Path) -> None:
    root = project(tmp_path, None, **{"3.12.10": ""})
    write(root / "versions" / "3.12.10" / "config.json", "{}")
    with pytest.raises(ConfigError, match="both exist"):
        load_variant(root, "3.12.10")


def test_extends_cycle_is_an_error(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        None,
        **{
            "3.12.10_a": 'extends = "3.12.10-b"\n',
            "3.12.10_b": 'extends = "3.12.10-c"\n',
            "3.12.10_c": 'extends = "3.12.10-a"\n',
        },
    )
    with pytest.raises(
        ConfigError, match=r"extends: cycle: 3.12.10-a -> 3.12.10-b -> 3.12.10-c -> 3.12.10-a"
    ):
        load_variant(root, "3.12.10-a")


def test_shared_config_may_not_extend(tmp_path: Path) -> None:
    root = project(tmp_path, 'extends = "3.12.10"\n', **{"3.12.10": ""})
    with pytest.raises(ConfigError, match=r"shared-config\.toml: extends: only variant files"):
        load_variant(root, "3.12.10")


def test_variant_without_version_needs_python_version(tmp_path: Path) -> None:
    root = project(tmp_path, None, custom="")
    with pytest.raises(ConfigError, match=r"python\.version: variant 'custom' does not start"):
        load_variant(root, "custom")
    write(root / "versions" / "custom" / "config.toml", '[python]\nversion = "3.11.7"\n')
    assert load_variant(root, "custom").python_version == "3.11.7"


def test_unknown_variant_is_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = project(tmp_path, None, **{"3.12.10": ""})
    assert main(["--project", str(root), "config", "3.99.0"]) == 2
    assert "unknown variant '3.99.0' (known: 3.12.10)" in capsys.readouterr().err


def test_traceback_only_with_verbose(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = project(tmp_path, None, **{"3.12.10": "[packages]\nforceSorce = {}\n"})
    assert main(["--project", str(root), "-v", "config", "3.12.10"]) == 2
    assert "Traceback" in capsys.readouterr().err


# --- the CLI ------------------------------------------------------------------------------


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return run_main(*args, cwd=cwd)


def test_cli_config_plan_json_for_shipped_variant() -> None:
    proc = run_cli("config", "3.12.10-atls", "--platform", "linux-x64", "--json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["requirements"][:6] == [
        "biopython==1.85",
        "openmm==8.3.1",
        "torch==2.7.0",
        "torchvision==0.22.0",
        "torchaudio==2.7.0",
        "ImmuneBuilder==1.2",
    ]
    assert plan["site_packages"] == "lib/python3.12/site-packages"
    assert [c["to"] for c in plan["copy_files"]] == ["bin"]


def test_cli_merged_config_as_toml_and_json() -> None:
    proc = run_cli("config", "3.12.10")
    assert proc.returncode == 0, proc.stderr
    assert "dependencies = [" in proc.stdout and "[packages.skip.cudf-cu12]" in proc.stdout
    data = json.loads(run_cli("config", "3.12.10", "--json").stdout)
    assert data["python"]["version"] == "3.12.10"
    assert data["packages"]["forceSource"]["parasail"]["linux-aarch64"]


def test_cli_list(tmp_path: Path) -> None:
    rows = json.loads(run_cli("list", "--json").stdout)
    assert {r["variant"]: r["platforms"] for r in rows}["3.12.10-atls"] == [
        "linux-x64",
        "macosx-aarch64",
    ]
    assert run_cli("list").stdout.splitlines()[0].startswith("3.10.11")


def test_cli_new_then_visible_everywhere(tmp_path: Path) -> None:
    root = project(tmp_path, '[packages]\ndependencies = ["numpy==2.2.6"]\n', **{"3.12.10": ""})
    proc = run_cli("new", "3.13.0-custom", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert (root / "versions" / "3.13.0-custom" / "config.toml").is_file()
    rows = json.loads(run_cli("list", "--json", cwd=root).stdout)
    assert [r["variant"] for r in rows] == ["3.12.10", "3.13.0-custom"]
    assert rows[1]["python_version"] == "3.13.0"
    # --from extends the other variant.
    assert run_cli("new", "3.12.10-extra", "--from", "3.12.10", cwd=root).returncode == 0
    text = (root / "versions" / "3.12.10-extra" / "config.toml").read_text()
    assert 'extends = "3.12.10"' in text
    assert load_variant(root, "3.12.10-extra").config.packages.dependencies == ["numpy==2.2.6"]
    # An existing name, a bad --from and a name without a version are usage errors.
    for args in (
        ("new", "3.13.0-custom"),
        ("new", "3.13.1", "--from", "nope"),
        ("new", "custom"),
    ):
        proc = run_cli(*args, cwd=root)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert not (root / "versions" / "custom").exists()
    assert not (root / "versions" / "3.13.1").exists()


def test_every_command_has_one_line_help() -> None:
    proc = run_cli("--help")
    assert proc.returncode == 0
    for command in ("config", "list", "new"):
        sub = run_cli(command, "--help")
        assert sub.returncode == 0
        assert sub.stdout.splitlines()[2].strip(), sub.stdout


def test_bad_usage_exit_2() -> None:
    # Through `python -m runenv` itself once: the entry point exits with main's code.
    proc = subprocess.run(
        [sys.executable, "-m", "runenv", "config"], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("runenv: error: runenv config: ") and proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    proc = run_cli("config", "3.12.10", "--platform", "solaris-sparc")
    assert proc.returncode == 2 and "unknown platform 'solaris-sparc'" in proc.stderr


def test_linux_tags_follow_packaging_rules() -> None:
    x64 = Platform.LINUX_X64.info.platform_tags((2, 28))
    assert x64[0] == "manylinux_2_28_x86_64"
    for tag in (
        "manylinux2014_x86_64",
        "manylinux2010_x86_64",
        "manylinux_2_12_x86_64",
        "manylinux1_x86_64",
        "manylinux_2_5_x86_64",
    ):
        assert tag in x64
    assert "manylinux_2_29_x86_64" not in x64
    arm = Platform.LINUX_AARCH64.info.platform_tags((2, 28))
    assert arm[-2:] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]
