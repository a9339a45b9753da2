"""`runenv` / `python -m runenv`: the only package that prints."""

from runenv.cli.project import build_parser, main

__all__ = ["build_parser", "main"]
