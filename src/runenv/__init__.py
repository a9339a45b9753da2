"""runenv: build portable, relocatable Python runtimes for many platforms from one config."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("runenv")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
