"""Write python-build-standalone-shaped archives for all five platforms (no GitHub needed).

    /path/to/python3.12 scripts/standin_pbs.py OUT --version 3.12.10 [--base-url URL]

The code is `tests/support/standin.py` (the tests import it; standard library only, so this
runs under any interpreter, even with `-S`): see its docstring.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.standin import main

if __name__ == "__main__":
    raise SystemExit(main())
