"""mailmoat: an anti-spam SMTP gateway."""

from importlib import metadata

__version__ = "0.1.0"


def installed_version() -> str:
    """The version of the installed distribution ("unknown" when run from a bare tree)."""
    try:
        return metadata.version("mailmoat")
    except metadata.PackageNotFoundError:
        return "unknown"
