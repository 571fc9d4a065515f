"""Feedback learning: label messages spam or ham, or forget them, in one save.

Contract: ``apply_feedback(home, items)`` takes (raw message, label) pairs,
label ``spam``, ``ham`` or ``forget``, loads the home's model once, applies
every item, saves once (retrying from a fresh load when another writer saved
meanwhile) and then updates the ledger. Per message, by its ``digest``:

- learned before with the same label: nothing happens (``unchanged``);
- learned before with the other label: that step is taken back and the new
  label learned (``moved``);
- ``forget``: the step recorded for it is taken back (``forgotten``), or
  nothing happens when it was never learned (``unknown``);
- otherwise it is learned (``learned``; with ``force`` False a message the
  model already classifies confidently is ``skipped`` and not recorded).

A message is identified by its Message-ID and its body (line ends and
trailing blanks normalised), so headers added in transit (Received,
X-Spam-*) or by an IMAP server do not make it another message. Bytes that
are no RFC 5322 message are learned as they are: ``parse_message`` never
raises and reads a headerless blob as a body. An empty message raises
``FeedbackError``. Learning is CPU work (a millisecond a message); call it
from a worker thread when an event loop must keep serving.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from mailmoat.classify.features import IndexArray, extract
from mailmoat.classify.model import Model
from mailmoat.classify.persist import ModelConflictError
from mailmoat.feedback.home import LedgerEntry, ModelHome
from mailmoat.message import parse_message

LABELS = ("spam", "ham", "forget")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.I | re.M)
ATTEMPTS = 5


class FeedbackError(ValueError):
    """Feedback that cannot be applied (an empty message, an unknown label)."""


@dataclass
class FeedbackResult:
    model: Model
    version: int | None  # the saved version; None when nothing changed
    outcomes: list[str] = field(default_factory=list)

    @property
    def counts(self) -> Counter[str]:
        return Counter(self.outcomes)

    def summary(self) -> str:
        parts = [f"{n} {what}" for what, n in sorted(self.counts.items())]
        saved = f"model version {self.version}" if self.version is not None else "model unchanged"
        return f"{', '.join(parts) or 'nothing'}; {saved}"


def digest(raw: bytes) -> str:
    """The identity of a message for the ledger (see the module doc)."""
    split = _HEADER_END.search(raw)
    head, body = (raw[: split.start()], raw[split.end() :]) if split else (b"", raw)
    found = _MESSAGE_ID.search(head)
    message_id = b" ".join(found.group(1).split()) if found else b""
    lines = [line.rstrip() for line in body.replace(b"\r\n", b"\n").split(b"\n")]
    while lines and not lines[-1]:
        lines.pop()
    hasher = hashlib.sha256(message_id + b"\0")
    hasher.update(b"\n".join(lines))
    return hasher.hexdigest()


@dataclass
class _Item:
    digest: str
    label: str
    raw: bytes
    indices: IndexArray | None = None


async def apply_feedback(
    home: ModelHome,
    items: Sequence[tuple[bytes, str]],
    *,
    force: bool = True,
    note: str = "feedback",
) -> FeedbackResult:
    """Apply ``items`` to ``home``'s model and save it (module doc)."""
    prepared = []
    for raw, label in items:
        if label not in LABELS:
            raise FeedbackError(f"unknown label {label!r}: use one of {', '.join(LABELS)}")
        if not raw.strip():
            raise FeedbackError("empty message: nothing to learn")
        prepared.append(_Item(digest(raw), label, raw))
    for _attempt in range(ATTEMPTS):
        model = await home.load()
        outcomes, changes = await _apply(home, model, prepared, force)
        if not changes:
            return FeedbackResult(model, None, outcomes)
        try:
            version = await home.save(model, note)
        except ModelConflictError:
            continue
        now = time.time()
        for key, change in changes.items():
            if change is None:
                await home.ledger_drop(key)
            else:
                label, step = change
                await home.ledger_put(key, LedgerEntry(label, step, version, now))
        return FeedbackResult(model, version, outcomes)
    raise ModelConflictError(f"{home.where}: too many concurrent saves")


async def _apply(
    home: ModelHome, model: Model, items: list[_Item], force: bool
) -> tuple[list[str], dict[str, tuple[str, float] | None]]:
    """Learn ``items`` into ``model``; the outcomes and the ledger changes
    (digest -> (label, step), or None to drop it)."""
    outcomes: list[str] = []
    changes: dict[str, tuple[str, float] | None] = {}
    for item in items:
        if item.digest in changes:
            change = changes[item.digest]
            known = None if change is None else LedgerEntry(change[0], change[1], 0, 0.0)
        else:
            known = await home.ledger_get(item.digest)
        if item.indices is None:
            item.indices = extract(parse_message(item.raw), model.features)
        if item.label == "forget":
            if known is None:
                outcomes.append("unknown")
                continue
            model.unlearn_step(item.indices, known.step)
            changes[item.digest] = None
            outcomes.append("forgotten")
            continue
        if known is not None and known.label == item.label:
            outcomes.append("unchanged")
            continue
        if known is not None:
            model.unlearn_step(item.indices, known.step)
        step = model.learn_step(item.indices, item.label == "spam", force=force or bool(known))
        if step == 0.0 and known is None:
            outcomes.append("skipped")
            continue
        changes[item.digest] = (item.label, step)
        outcomes.append("moved" if known is not None else "learned")
    return outcomes, changes
