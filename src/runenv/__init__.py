"""runenv: build portable, relocatable Python runtimes for many platforms from one config."""

# The one place the version is written (pyproject.toml reads it from here): a literal, not a
# metadata lookup, which cost every command ~50 ms of start-up.
__version__ = "0.1.0"

__all__ = ["__version__"]
