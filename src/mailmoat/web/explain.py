"""Plain-language explanations of symbols and refusal reasons for the dashboard.

Contract: ``explain_symbol(name)`` returns one sentence for a symbol: the
exact name when known, else the explanation of its check prefix (``DNSBL_``,
``SPF_``...), else "". ``REASONS`` describes the refusal reasons counted by
the statistics. Text only; no policy lives here.
"""

from __future__ import annotations

SYMBOLS: dict[str, str] = {
    "HELO_NOT_FQDN": "The client's HELO name is not a fully qualified domain name.",
    "HELO_BARE_IP": "The client greeted with a bare IP address instead of a name.",
    "HELO_BAD_SYNTAX": "The HELO argument is not a valid host name or address literal.",
    "HELO_OURS": "The client claims to be us (our host name or address): a forgery.",
    "HELO_LITERAL_MISMATCH": "The HELO address literal differs from the client's address.",
    "HDR_MISSING_DATE": "The message has no Date header (RFC 5322 requires one).",
    "HDR_BAD_DATE": "The Date header cannot be parsed.",
    "HDR_MISSING_FROM": "The message has no From header (RFC 5322 requires one).",
    "HDR_MULTIPLE_FROM": "The message has more than one From header.",
    "HDR_BAD_FROM": "The From header is not a valid address.",
    "HDR_MISSING_MESSAGE_ID": "The message has no Message-ID header, typical of bulk tools.",
    "HDR_BAD_MESSAGE_ID": "The Message-ID header is malformed.",
    "BODY_EMPTY": "The message has no body text.",
    "SIZE_DECLARED_WRONG": "The SIZE declared at MAIL FROM differs from what was sent.",
    "SIZE_OVER_SOFT_LIMIT": "The message is larger than the soft size limit.",
    "SMTP_8BIT_UNDECLARED": "8-bit bytes were sent without BODY=8BITMIME or SMTPUTF8.",
    "PREGREET": "The client talked before our greeting: a bot that does not wait.",
    "PROTOCOL_BARE_NEWLINE": "SMTP commands ended with a bare LF, as hand-made bot clients do.",
    "PROTOCOL_NON_SMTP": "The client sent a non-SMTP command (HTTP, POP...).",
    "PROTOCOL_PIPELINING": "The client pipelined commands without being offered PIPELINING.",
    "MIME_TOO_DEEP": "MIME parts are nested deeper than the parser follows.",
    "MIME_TOO_MANY_PARTS": "The message has more MIME parts than the parser reads.",
    "PARSE_FAILED": "Part of the message could not be parsed; only what could be read was checked.",
}

PREFIXES: dict[str, str] = {
    "DNSBL_": "The client address is listed on a DNS blocklist.",
    "URIBL_": "A domain found in the message is listed on a domain blocklist.",
    "URLBL_": "A domain found in the message is listed on a domain blocklist.",
    "SPF_": "Result of the SPF check of the envelope sender against the client address.",
    "DKIM_": "Result of verifying the message's DKIM signatures.",
    "DMARC_": "Result of the DMARC policy check of the From domain.",
    "BAYES_": "The statistical classifier's judgement of the content.",
    "CLASSIFIER_": "The statistical classifier's judgement of the content.",
    "CLS_": "The statistical classifier's judgement of the content.",
    "RULE_": "A content rule matched.",
    "RULES_": "A content rule matched.",
    "ATTACH_": "An attachment property (dangerous type, archive bomb...).",
    "BULK_": "The same content was seen from many senders (bulk fingerprint).",
    "RATE_": "The client exceeded a configured rate.",
    "GREYLIST": "The triplet was not seen before: temporarily refused, a real MTA retries.",
    "RDNS_": "Reverse DNS of the client address is missing or does not match.",
    "HELO_": "A HELO/EHLO sanity test.",
    "HDR_": "A header sanity test.",
    "CHECK_": "A check failed or timed out; its configured fail mode applied.",
    "ALLOW": "The client or sender is on an allowlist.",
    "DENY": "The client or sender is on a denylist.",
}

REASONS: dict[str, str] = {
    "score": "The total score reached the reject threshold (content, classifier, rules).",
    "dnsbl": "Client listed on a DNS blocklist.",
    "pregreet": "Client talked before the greeting.",
    "protocol": "SMTP protocol violation (pipelining, bare newline, non-SMTP command).",
    "greylist": "Greylisted: first delivery attempt of an unknown triplet.",
    "rate_limit": "Too many connections or messages from the client.",
    "relay_denied": "Recipient not in a domain we relay for.",
    "unknown_recipient": "The mail server behind us does not know the recipient.",
    "spf": "SPF hard failure.",
    "dmarc": "DMARC policy says reject.",
    "size": "Message larger than smtp.max_message_size.",
    "check_failure": "A check failed and its fail mode is tempfail.",
    "upstream_tempfail": "The mail server behind us answered 4xx.",
    "delivery_failed": "Delivery to the Maildir or upstream failed; the sender retries.",
}


def explain_symbol(name: str) -> str:
    if name in SYMBOLS:
        return SYMBOLS[name]
    for prefix, text in sorted(PREFIXES.items(), key=lambda kv: -len(kv[0])):
        if name.startswith(prefix):
            return text
    return ""
