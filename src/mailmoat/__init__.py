"""mailmoat: an anti-spam SMTP gateway."""

__version__ = "0.1.0"
