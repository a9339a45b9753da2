"""runenv's benchmarks: runenv against the reference method and uv by hand (`python -m
benchmarks`), the wheelhouse layout against the reference's (`python -m benchmarks
wheelhouse`), and two micro-benchmarks (`pack`, `install`). Part of the repository, not of
runenv's wheel: run them from a checkout with runenv installed (`pip install -e .`).
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
