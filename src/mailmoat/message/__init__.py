"""The message model every content check reads: parse once, bounded, never raise.

Public API: ``parse_message(raw, limits=None) -> ParsedMessage``, and the
value types ``ParsedMessage``, ``Attachment``, ``ParseLimits``.
"""

from mailmoat.message.model import Attachment, ParsedMessage, ParseLimits
from mailmoat.message.parse import parse_message

__all__ = ["Attachment", "ParseLimits", "ParsedMessage", "parse_message"]
