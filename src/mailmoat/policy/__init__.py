"""The Postfix policy delegation front (``mailmoat policy``)."""

from mailmoat.policy.server import PolicyServer, PolicySession, format_action, parse_request

__all__ = ["PolicyServer", "PolicySession", "format_action", "parse_request"]
