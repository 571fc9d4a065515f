"""The state a session and its transactions carry through the pipeline.

A ``Session`` lives for one client connection: its address, HELO, reverse
DNS and the evidence of the connect and helo stages. A ``Transaction`` lives
from MAIL FROM to the end of DATA (or RSET): envelope, message bytes, and the
evidence of the mail, rcpt and data stages. Both are plain data; the fronts
fill them, checks read them and add evidence through the runner.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from mailmoat.core.authresults import AuthResult
from mailmoat.core.fieldpick import fields_named, lower_head, mentions
from mailmoat.core.findings import Finding
from mailmoat.core.headers import header_fields, parse_header_block
from mailmoat.core.symbols import Forced, Symbol

# Queue ids are not secret, but they are shown to every client: their own
# generator keeps them from revealing the state of any other. Reseeded from
# the system in each forked worker, so workers never share a sequence.
_queue_ids = random.Random()
os.register_at_fork(after_in_child=_queue_ids.seed)


def new_queue_id() -> str:
    """A short, unique, log-friendly id (like Postfix's queue ids): 48 random
    bits, without a system call per id."""
    return f"{_queue_ids.getrandbits(48):012X}"


@dataclass
class Session:
    client_ip: str
    client_port: int = 0
    # Reverse DNS name, verified or not, as found by the rdns check ("" = none).
    client_rdns: str = ""
    helo: str = ""
    esmtp: bool = False
    tls: bool = False
    # Which front delivered this session: "smtp", "milter", "policy", "scan".
    front: str = "smtp"
    session_id: str = field(default_factory=new_queue_id)
    started: float = field(default_factory=time.time)
    symbols: list[Symbol] = field(default_factory=list)
    forced: list[Forced] = field(default_factory=list)
    # The DNS lists' summed weight for the client (dnsbl check); negative
    # with no outweighing block list: DNSWL-listed (greylisting skips it).
    dnsbl_weight: float = 0.0
    dnswl: bool = False
    # What the SMTP front's engine saw the client do (pregreet, protocol).
    findings: list[Finding] = field(default_factory=list)
    # A check's or front's private memo for this session, under a key of its
    # own (e.g. the DNSBL lookups started at connect, read back at HELO by
    # the same check); never a result another check reads (that is a typed
    # field, like ``dnswl`` above).
    notes: dict[str, Any] = field(default_factory=dict)
    # Called once when the connection ends, whatever the reason (e.g. to
    # release a concurrency slot taken at connect). Errors are logged.
    cleanups: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @property
    def allowlisted(self) -> bool:
        return any(f.action == "accept" for f in self.forced)


@dataclass
class Transaction:
    session: Session
    mail_from: str = ""
    mail_options: list[str] = field(default_factory=list)
    # Recipients accepted so far (by us and by the upstream).
    rcpts: list[str] = field(default_factory=list)
    # The recipient the rcpt stage is looking at right now.
    current_rcpt: str = ""
    # Raw message bytes as received, CRLF line ends, no dot-stuffing.
    data: bytes = b""
    queue_id: str = field(default_factory=new_queue_id)
    started: float = field(default_factory=time.time)
    symbols: list[Symbol] = field(default_factory=list)
    forced: list[Forced] = field(default_factory=list)
    # Header lines (name, value) the pipeline wants added before delivery.
    added_headers: list[tuple[str, str]] = field(default_factory=list)
    # Exact header lines (name, value) to remove before delivery, e.g. an
    # incoming Authentication-Results that claims our own authserv-id.
    removed_headers: list[tuple[str, str]] = field(default_factory=list)
    # Sender authentication (spf, dkim, dmarc checks), read by dmarc and
    # auth_results: one result per identity, signature or chain.
    spf_results: list[AuthResult] = field(default_factory=list)
    dkim_results: list[AuthResult] = field(default_factory=list)
    arc_results: list[AuthResult] = field(default_factory=list)
    dmarc_results: list[AuthResult] = field(default_factory=list)
    # The bulk check's fingerprint bands of the body (reputation's campaigns
    # group messages by them); empty: no fingerprint (too short, disabled).
    bulk_fingerprint: tuple[str, ...] = ()
    # Set by the fronts: the MTA's own queue id (milter, policy; "" = none)
    # and the RCPT commands the client sent, refused ones included.
    mta_queue_id: str = ""
    rcpt_attempts: int = 0
    # When the pipeline began the DATA stage (time.monotonic(); None: not yet),
    # read by the transaction record for its end-of-DATA time.
    eod_started: float | None = None
    # A check's or front's private memo for this transaction, under a key of
    # its own; never a result another check reads (that is a typed field).
    notes: dict[str, Any] = field(default_factory=dict)
    _message: Any = None
    _headers: Message | None = None
    _headers_of: bytes | None = None
    _fields: tuple[tuple[str, str], ...] = ()
    _fields_of: bytes | None = None
    _low_head: bytes = b""
    _low_head_of: bytes | None = None

    @property
    def all_symbols(self) -> list[Symbol]:
        return [*self.session.symbols, *self.symbols]

    @property
    def all_forced(self) -> list[Forced]:
        return [*self.session.forced, *self.forced]

    @property
    def allowlisted(self) -> bool:
        if not self.forced and not self.session.forced:  # most transactions
            return False
        return any(f.action == "accept" for f in self.all_forced)

    @property
    def score(self) -> float:
        return round(sum(s.score for s in self.all_symbols), 2)

    @property
    def headers(self) -> Message:
        """The header block (stdlib compat32 parser, tolerant), parsed once:
        the header check, the record and the quarantine share it."""
        if self._headers is None or self._headers_of is not self.data:
            self._headers = parse_header_block(self.data)
            self._headers_of = self.data
        return self._headers

    @property
    def header_fields(self) -> tuple[tuple[str, str], ...]:
        """The top-level header fields as (name, unfolded value), split once
        (DKIM, DMARC and Authentication-Results read them)."""
        if self._fields_of is not self.data:
            self._fields = header_fields(self.data)
            self._fields_of = self.data
        return self._fields

    def fields_named(self, *names: str) -> tuple[tuple[str, str], ...]:
        """The fields of ``header_fields`` whose lower-cased name is one of
        ``names`` (lower case), in order; the others are neither unfolded nor
        decoded, and a block that cannot hold such a field (most have no
        DKIM-Signature or Authentication-Results) is not split at all
        (``mailmoat.core.fieldpick``)."""
        if self._fields_of is self.data:
            return tuple(f for f in self._fields if f[0].lower() in names)
        if self._low_head_of is not self.data:
            self._low_head = lower_head(self.data)
            self._low_head_of = self.data
        if not mentions(self._low_head, [name.encode("ascii") for name in names]):
            return ()
        return fields_named(self.data, names, self._low_head)

    @property
    def message(self) -> Any:
        """The parsed message (``mailmoat.message.ParsedMessage``), parsed once;
        it reuses the header block parse of ``headers`` when that fits."""
        if self._message is None:
            from mailmoat.message import parse_message

            self._message = parse_message(self.data, head=self.headers)
        return self._message
