"""The milter front (``mailmoat milter``): Postfix/Sendmail call the pipeline."""

from mailmoat.milter.server import MilterServer, MilterSession

__all__ = ["MilterServer", "MilterSession"]
