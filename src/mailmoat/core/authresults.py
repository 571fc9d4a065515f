"""One resinfo of an Authentication-Results field (RFC 8601).

Contract: ``AuthResult`` is what the sender-authentication checks (spf,
dkim, dmarc) leave on the transaction (``Transaction.spf_results`` and the
like) for the checks that read them (dmarc, auth_results);
``render()`` is its text in the field. Plain data, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_BARE = re.compile(r"^[A-Za-z0-9!#$%&'*+\-./^_`{|}~@]+$")


@dataclass(frozen=True, slots=True)
class AuthResult:
    """One resinfo of an Authentication-Results field.

    ``props`` are (ptype.property, value) pairs such as
    ("smtp.mailfrom", "user@example.org") or ("header.d", "example.org").
    """

    method: str
    result: str
    reason: str = ""
    props: tuple[tuple[str, str], ...] = ()

    def prop(self, name: str) -> str:
        for key, value in self.props:
            if key == name:
                return value
        return ""

    def render(self) -> str:
        text = f"{self.method}={self.result}"
        if self.reason and (self.result != "pass" or self.method == "dmarc"):
            text += f" reason={_quoted(self.reason[:120])}"
        for key, value in self.props:
            if value:
                text += f" {key}={_pvalue(value)}"
        return text


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', "'") + '"'


def _pvalue(value: str) -> str:
    return value if _BARE.match(value) else _quoted(value)
