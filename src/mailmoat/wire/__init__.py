"""SMTP bytes on a socket, for both sides of a conversation.

``connection``: line framing and the DATA reader (an asyncio Protocol);
``content``: DATA payload transforms (dot-stuffing, line ends, header
edits). Shared by the SMTP front (server side) and the upstream client
(``mailmoat.delivery``); imports neither.
"""
