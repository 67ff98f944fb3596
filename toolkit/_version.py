"""The installed distribution's version, for ``tk.__version__`` and ``toolkit --version``."""

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("toolkit")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0.0.0+unknown"
