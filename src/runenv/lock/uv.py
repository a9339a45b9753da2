"""Every uv command runenv runs goes through `run_uv`: one way to find uv, one environment.

The environment policy: uv settings from the user's environment may stay only when they are
about transport or credentials (timeouts, retries, TLS, keyring, per-index logins). Everything
else under `UV_*` (indexes, constraints, `exclude-newer`, `no-binary`, ...) would change what uv
resolves or installs behind the configuration's back, so a lock or a source build would depend
on the shell it ran in; those are removed. uv's cache is runenv's (`<cache>/uv`), it never
downloads a Python, and it draws no progress bars into the build log. Callers also pass
`--no-config`, so no `uv.toml` or `pyproject.toml` setting applies either.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from runenv._cache import Cache
from runenv._subprocess import run

CACHE_SECTION = "uv"

KEEP_ENV = frozenset(
    {
        "UV_HTTP_TIMEOUT",
        "UV_HTTP_RETRIES",
        "UV_REQUEST_TIMEOUT",
        "UV_NATIVE_TLS",
        "UV_INSECURE_HOST",
        "UV_KEYRING_PROVIDER",
        "UV_CONCURRENT_DOWNLOADS",
    }
)
"""The `UV_*` variables of the user's environment that pass through (transport only)."""
KEEP_ENV_RE = re.compile(r"UV_INDEX_.+_(USERNAME|PASSWORD)")
"""Per-index credentials (`UV_INDEX_<NAME>_USERNAME`/`_PASSWORD`) pass through too."""


def uv_command() -> list[str]:
    """How to start uv: the binary the `uv` package ships, else `python -m uv`."""
    try:
        from uv import find_uv_bin

        return [find_uv_bin()]
    except (ImportError, FileNotFoundError):
        return [sys.executable, "-m", "uv"]


def uv_env(cache: Cache, extra: Mapping[str, str | None] | None = None) -> dict[str, str | None]:
    """The environment changes every uv command gets (None removes a variable), then `extra`."""
    env: dict[str, str | None] = {
        key: None
        for key in os.environ
        if key.startswith("UV_") and key not in KEEP_ENV and not KEEP_ENV_RE.fullmatch(key)
    }
    env["UV_CACHE_DIR"] = str(cache.section(CACHE_SECTION))
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env["UV_NO_PROGRESS"] = "1"
    env.update(extra or {})
    return env


def run_uv(
    args: Sequence[str | os.PathLike[str]],
    *,
    what: str,
    cache: Cache,
    timeout: float,
    log_file: Path | None,
    env: Mapping[str, str | None] | None = None,
) -> str:
    """Run `uv ARGS` under the policy above; return its output, or raise `SubprocessError`."""
    return run(
        [*uv_command(), *args],
        what=what,
        env=uv_env(cache, env),
        timeout=timeout,
        log_file=log_file,
    )
