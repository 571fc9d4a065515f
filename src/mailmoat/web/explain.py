"""Plain-language explanations of symbols and refusal reasons for the dashboard.

Contract: ``explain_symbol(name, config)`` returns one sentence for a
symbol: what the check declaring it says (``mailmoat.checks.catalog``: the
checks' specs, exactly or by family such as ``DNSBL_<SITE>``, and the rules
``config`` loads), else "". The same text as ``mailmoat symbols``.
``REASONS`` describes the refusal reasons counted by the statistics. Text
only; no policy lives here.
"""

from __future__ import annotations

from mailmoat.checks import catalog
from mailmoat.config import Config

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


def explain_symbol(name: str, config: Config) -> str:
    return catalog.description(name, config)
