"""`python -m runenv`."""

from runenv.cli import main

raise SystemExit(main())
