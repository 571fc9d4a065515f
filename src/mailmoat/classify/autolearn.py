"""The autolearn guard: may a verdict teach the classifier, and what?

Contract: ``judge(symbols, settings)`` looks at a message's symbols (names
and scores, after ``[scores]`` overrides) and returns an ``AutolearnVerdict``
whose ``label`` is ``"spam"``, ``"ham"`` or None, with a short reason. It is
pure and never raises; the gateway (``mailmoat.autolearn``) and
``mailmoat eval --autolearn`` share it.

Policy, SpamAssassin's autolearn adapted to mailmoat's evidence:

1. Never learn from mail an administrator already labelled: a message with
   an allow or deny list entry (``LIST_ALLOW_*``/``LIST_DENY_*``) is left
   alone (``labelled=True`` says the same for other labels, e.g. a feedback
   label in ``mailmoat eval``).
2. The classifier never confirms itself: spam is judged on the score
   *without* the ``BAYES_*`` symbols, which must reach
   ``autolearn_spam_threshold``, with at least
   ``autolearn_min_sender_points`` from the sender (connection, envelope and
   authentication symbols: ``SENDER_PREFIXES``) and
   ``autolearn_min_content_points`` from the content (everything else):
   two independent kinds of evidence, as SpamAssassin asks 3 points from
   header and 3 from body rules.
3. Ham needs authentication (``SPF_PASS`` or ``DMARC_PASS``, the latter
   meaning SPF or DKIM passed aligned with the From domain) and a total
   score, classifier included, at or below ``autolearn_ham_threshold``: a
   message the classifier leans against is not learned as ham.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

CLASSIFIER_PREFIX = "BAYES_"
ADMIN_PREFIXES = ("LIST_ALLOW_", "LIST_DENY_")
AUTH_PASS = frozenset({"SPF_PASS", "DMARC_PASS"})
# Evidence about the sender rather than the content.
SENDER_PREFIXES = (
    "DNSBL_",
    "RDNS_",
    "HELO_",
    "SPF_",
    "DKIM_",
    "DMARC_",
    "ARC_",
    "AUTH_RESULTS_",
    "PROTOCOL_",
    "PREGREET",
    "SMTP_",
    "RATELIMIT_",
    "GREYLIST_",
)


class Scored(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def score(self) -> float: ...


class AutolearnSettings(Protocol):
    @property
    def autolearn_spam_threshold(self) -> float: ...
    @property
    def autolearn_min_sender_points(self) -> float: ...
    @property
    def autolearn_min_content_points(self) -> float: ...
    @property
    def autolearn_ham_threshold(self) -> float: ...


@dataclass(frozen=True)
class AutolearnVerdict:
    label: str | None
    reason: str


def judge(
    symbols: Iterable[Scored], settings: AutolearnSettings, *, labelled: bool = False
) -> AutolearnVerdict:
    """The policy above; ``label`` None means: do not learn."""
    names: set[str] = set()
    total = sender = content = 0.0
    classifier = 0.0
    for symbol in symbols:
        names.add(symbol.name)
        total += symbol.score
        if symbol.name.startswith(CLASSIFIER_PREFIX):
            classifier += symbol.score
        elif symbol.name.startswith(SENDER_PREFIXES):
            sender += symbol.score
        else:
            content += symbol.score
    total, sender, content = round(total, 2), round(sender, 2), round(content, 2)
    if labelled or any(n.startswith(ADMIN_PREFIXES) for n in names):
        return AutolearnVerdict(None, "labelled by an administrator")
    independent = round(total - classifier, 2)
    if (
        independent >= settings.autolearn_spam_threshold
        and sender >= settings.autolearn_min_sender_points
        and content >= settings.autolearn_min_content_points
    ):
        return AutolearnVerdict(
            "spam",
            f"score without classifier {independent:g} (sender {sender:g}, content {content:g})",
        )
    if total <= settings.autolearn_ham_threshold and names & AUTH_PASS:
        passed = ",".join(sorted(names & AUTH_PASS))
        return AutolearnVerdict("ham", f"score {total:g}, {passed}")
    return AutolearnVerdict(
        None, f"score without classifier {independent:g} (sender {sender:g}, content {content:g})"
    )
