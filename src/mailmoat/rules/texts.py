"""The texts rules search, each made (and case-folded) at most once per message.

Contract: ``Texts(message, fields).values(key)`` returns the list of values
a rule of text ``key`` searches (a rule hits when its regex matches one of
them). Keys of the TOML rules: ``header:NAME`` (every value of the field,
decoded), ``header:all`` (``Name: value`` of every field), ``body`` (Subject,
text parts and rendered HTML joined, first ``BODY_LIMIT`` characters),
``rawbody`` (the undecoded body, first ``RAW_LIMIT`` bytes, Latin-1),
``uri`` (each URL). Keys of the SpamAssassin rules (byte strings seen as
Latin-1, see ``satexts``): ``sa-body``, ``sa-body-nosubject``,
``sa-rawbody``, ``sa-full``, ``sa-uri``, ``sa-header:SPEC`` (one value, the relays
pseudo-headers made from the transaction's session and the Received
headers; a missing header gives "" or, for ``sa-header:SPEC\\0TEXT``, TEXT as
``[if-unset: TEXT]`` asks) ``sa-exists:NAME`` (one empty value when the
field exists, none otherwise: ``exists_names``) and ``sa-eval:CALL`` (the same, when the
native eval says so). ``haystack(key, folded)`` is the text the
literal prefilter tests. Nothing here raises on odd content.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from mailmoat.rules import evals, satexts
from mailmoat.rules.prefilter import Haystack, fold_for_literals

RAW_LIMIT = 256 * 1024
BODY_LIMIT = 256 * 1024

_SA_TEXTS: dict[str, Callable[[Any], list[str]]] = {
    "sa-rawbody": satexts.rawbody_chunks,
    "sa-full": satexts.full_text,
    "sa-uri": satexts.uris,
}


# The values of a header text that is empty (most are: absent headers),
# shared so that a rule can tell it at once (never modified).
ABSENT = [""]

_HEADER, _MAKER, _BODY, _EVAL, _EXISTS, _RELAYS = range(6)
# What each ``sa-`` key asks for, read once per key: (kind, header spec or
# eval call or field, (text if unset, raw fields, the fields one of which
# must exist for a text: none for ``ALL``)).
_Plan = tuple[int, str, tuple[str, bool, tuple[str, ...]]]
_PLANS: dict[str, _Plan] = {}
_NOTHING = ("", False, ())


def _plan(key: str) -> _Plan:
    if key in _SA_TEXTS:
        return _MAKER, "", _NOTHING
    if key in ("sa-body", "sa-body-nosubject"):
        return _BODY, "", _NOTHING
    kind, _, spec = key.partition(":")
    if kind == "sa-eval":
        return _EVAL, spec, _NOTHING
    if kind == "sa-exists":
        return _EXISTS, spec, _NOTHING
    spec, _, unset = spec.partition("\0")
    name, *modifiers = spec.split(":")
    if name in satexts.RELAY_HEADERS:
        return _RELAYS, "", _NOTHING
    wanted = () if name == "all" else satexts.PSEUDO_FIELDS.get(name, (name,))
    return _HEADER, spec, (unset, "raw" in modifiers, wanted)


class Texts:
    """The texts of one message, made on first use."""

    def __init__(self, message: Any, fields: frozenset[str], tx: Any = None) -> None:
        self.message = message
        self.tx = tx  # the transaction, for the relays (None: the headers only)
        self.fields = fields  # the header fields rules name and the Subject, lower case
        self.made: dict[str, list[str]] = {}
        self.haystacks: dict[tuple[str, bool], Haystack] = {}
        self._by_name: dict[bool, satexts.Fields] = {}  # raw -> header fields
        self._header_texts: dict[str, str | None] = {}
        self._relays: str | None = None
        self._body_lines: list[str] | None = None

    def values(self, key: str) -> list[str]:
        made = self.made.get(key)
        if made is None:
            made = self._make(key)
        return made

    def _make(self, key: str) -> list[str]:
        message = self.message
        made: list[str]
        if key.startswith("sa-"):
            made = self._make_sa(key)
        elif key == "header:all":
            made = [f"{n}: {v}" for n, v in message.headers]
        elif key.startswith("header:"):
            fields: dict[str, list[str]] = {name: [] for name in self.fields}
            for name, value in message.headers:
                found = fields.get(name.lower())
                if found is not None:
                    found.append(value)
            for name, found in fields.items():
                self.made[f"header:{name}"] = found
            return fields.get(key[len("header:") :], [])
        elif key == "body":
            subject = self.values("header:subject")  # message.subject: the first field
            joined = "\n".join((subject[0] if subject else "", message.text, message.html_text))
            made = [joined[:BODY_LIMIT]]
        elif key == "uri":
            made = message.urls
        else:
            offset = message.body_offset  # message.body would copy all of it first
            made = [message.raw[offset : offset + RAW_LIMIT].decode("latin-1")]
        self.made[key] = made
        return made

    def make_headers(self, keys: Iterable[str]) -> None:
        """Make the header texts ``keys`` (see ``header_keys``) in one pass:
        the rules read every one of them on every message."""
        made = self.made
        header_texts = self._header_texts
        fields_of = self._fields
        for key in keys:
            if key in made:
                continue
            plan = _PLANS.get(key)
            if plan is None:
                plan = _PLANS[key] = _plan(key)
            _, spec, (unset, raw, wanted) = plan
            if spec in header_texts:
                text = header_texts[spec]
            else:
                fields = fields_of(raw)
                text = None  # absent (most of them): nothing to make
                for name in wanted or ("",):
                    if not name or name in fields:
                        text = satexts.header_text(spec, fields)
                        break
                header_texts[spec] = text
            value = unset if text is None else text
            made[key] = [value] if value else ABSENT

    def _make_sa(self, key: str) -> list[str]:
        plan = _PLANS.get(key)
        if plan is None:
            plan = _PLANS[key] = _plan(key)
        kind, spec, _ = plan
        if kind == _HEADER:
            self.make_headers((key,))
            return self.made.pop(key)  # ``values`` keeps it
        if kind == _MAKER:
            return _SA_TEXTS[key](self.message)
        if kind == _BODY:
            # The same lines, with and without the Subject's: made once.
            if self._body_lines is None:
                self._body_lines = satexts.body_lines(self.message, subject=False)
            if key == "sa-body-nosubject":
                return self._body_lines
            return satexts.subject_lines(self.message) + self._body_lines
        if kind == _EVAL:
            return [""] if evals.NATIVE[spec](self.message, self.tx) else []
        if kind == _EXISTS:
            fields = self._fields(False)
            return [""] if any(name in fields for name in exists_names(spec)) else []
        if self._relays is None:
            session = getattr(self.tx, "session", None)
            mail_from = getattr(self.tx, "mail_from", "") or ""
            self._relays = satexts.relays(self.message, session, mail_from)
        return [self._relays]

    def _fields(self, raw: bool) -> satexts.Fields:
        made = self._by_name.get(raw)
        if made is None:
            pairs = (
                satexts.raw_headers(self.message)
                if raw
                else [
                    (n, v if v.isascii() else satexts.as_bytes(v)) for n, v in self.message.headers
                ]
            )
            made = self._by_name[raw] = satexts.Fields(pairs)
        return made

    def field_names(self) -> satexts.Fields:
        """The message's header fields by lower-case name (decoded values)."""
        return self._fields(False)

    def haystack(self, key: str, folded: bool) -> Haystack:
        """The haystack of text ``key`` (made already), folded or not."""
        made = self.haystacks.get((key, folded))
        if made is None:
            values = self.made[key]
            text = values[0] if len(values) == 1 else "\n".join(values)
            haystack = fold_for_literals(text) if folded else text
            aligned = len(values) == 1 and len(haystack) == len(text)
            made = self.haystacks[(key, folded)] = Haystack(haystack, aligned)
        return made

    def joined(self, key: str) -> str:
        """The values of ``key`` (made already) joined by newlines."""
        values = self.made[key]
        return values[0] if len(values) == 1 else "\n".join(values)


def header_keys(keys: Iterable[str]) -> tuple[str, ...]:
    """Those of ``keys`` that are SpamAssassin header texts (``sa-header:``,
    the relays excepted): what ``Texts.make_headers`` makes."""
    return tuple(k for k in keys if k.startswith("sa-header:") and _plan(k)[0] == _HEADER)


def exists_names(spec: str) -> tuple[str, ...]:
    """The lower-case field names ``sa-exists:SPEC`` asks for, one of which
    must exist. Pseudo-headers by their exact SpamAssassin spelling only:
    exists:MessageID asks for a (malformed) field of that name."""
    pseudo = satexts.PSEUDO_SPELLINGS.get(spec)
    return satexts.PSEUDO_FIELDS[pseudo] if pseudo else (spec.lower(),)
