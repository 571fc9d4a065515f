"""The Postfix policy delegation front: screening at RCPT time.

Contract: ``PolicyServer`` listens on ``[policy] listen`` and speaks Postfix's
policy protocol (SMTPD_POLICY_README): a request is ``name=value`` lines
ended by an empty line; the answer is ``action=...`` and an empty line; a
connection carries many requests. For ``protocol_state=RCPT`` requests the
pipeline runs the connect, helo, mail and rcpt stages on a ``Session`` and
``Transaction`` built from the attributes (client_address, client_name,
helo_name, sender, recipient; ``front = "policy"``). Requests of one SMTP
transaction (same ``instance``) share them, so connect-time counters and
checks run once per transaction, not once per recipient.

Decision -> action (no policy here, the decision says it all):

- accept, add_header, quarantine, allowlisted -> ``DUNNO`` (Postfix goes on
  with its own restrictions; content is judged later, e.g. by the milter);
- soft_reject -> the decision's ``451 4.7.1 text`` (or ``DEFER_IF_PERMIT
  text`` with ``[policy] defer_if_permit``); a 421 closes the SMTP session;
- reject -> the decision's ``550/554 5.x.y text``; discard -> ``DISCARD``.

Other protocol states (DATA, END-OF-MESSAGE...) answer ``DUNNO``.

Failure: a request that fails inside the pipeline, or the store being down
under ``store.fail_mode = "tempfail"``, answers ``451 4.3.0`` for that
recipient, never an accept; a malformed or oversized request closes the
connection (Postfix then answers that recipient with its policy
``default_action``, ``451 4.3.5`` unless configured otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from mailmoat.core.record import record_for
from mailmoat.core.scoring import Decision
from mailmoat.core.symbols import Action, Stage
from mailmoat.core.transaction import Session, Transaction
from mailmoat.fronts import FrontServer
from mailmoat.runtime import Runtime

log = logging.getLogger("mailmoat.policy")

MAX_REQUEST = 64 * 1024
TEMPFAIL = "451 4.3.0 Temporary failure in the mail filter, try again later"


class RequestError(ValueError):
    """Not a policy request."""


def parse_request(block: bytes) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for raw in block.split(b"\n"):
        line = raw.rstrip(b"\r")
        if not line:
            continue
        name, sep, value = line.partition(b"=")
        if not sep or not name:
            raise RequestError(f"bad attribute line {line[:60]!r}")
        attributes[name.decode("ascii", "replace")] = value.decode("utf-8", "surrogateescape")
    return attributes


def format_action(action: str) -> bytes:
    clean = " ".join(action.split())
    return f"action={clean}\n\n".encode("utf-8", "surrogateescape")


class PolicySession:
    def __init__(
        self,
        runtime: Runtime,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.runtime = runtime
        self.config = runtime.config
        self.reader = reader
        self.writer = writer
        self.instance = ""
        self.tx: Transaction | None = None

    async def run(self) -> None:
        peer = self.writer.get_extra_info("peername")
        try:
            while True:
                block = await self._read_request()
                if block is None:
                    return
                try:
                    attributes = parse_request(block)
                except RequestError as exc:
                    log.warning("mta=%s bad policy request: %s", peer, exc)
                    return
                action = await self.answer(attributes)
                self.writer.write(format_action(action))
                await self.writer.drain()
        except TimeoutError:
            log.info("mta=%s idle past %gs, closing", peer, self.config.policy.timeout)
        except (ConnectionError, asyncio.LimitOverrunError, ValueError) as exc:
            log.info("mta=%s policy connection ended: %s", peer, exc)
        finally:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    async def _read_request(self) -> bytes | None:
        lines: list[bytes] = []
        size = 0
        while True:
            line = await asyncio.wait_for(self.reader.readline(), self.config.policy.timeout)
            if not line:
                return None
            size += len(line)
            if size > MAX_REQUEST:
                raise ValueError("request too large")
            if line in (b"\n", b"\r\n"):
                if lines:
                    return b"".join(lines)
                continue
            lines.append(line)

    async def answer(self, attributes: dict[str, str]) -> str:
        """The ``action=`` value for one request."""
        if attributes.get("request") != "smtpd_access_policy":
            return "DUNNO"
        if attributes.get("protocol_state", "").upper() != "RCPT":
            return "DUNNO"
        try:
            return await self._rcpt(attributes)
        except Exception:
            log.exception("policy request failed: %s", _summary(attributes))
            return TEMPFAIL

    async def _rcpt(self, attributes: dict[str, str]) -> str:
        pipeline = self.runtime.pipeline
        instance = attributes.get("instance", "")
        tx = self.tx
        if tx is None or not instance or instance != self.instance:
            tx = self._new_transaction(attributes)
            self.tx, self.instance = tx, instance
            for stage in (Stage.CONNECT, Stage.HELO, Stage.MAIL):
                decision = await pipeline.run(stage, tx)
                # An immediate refusal (a connect-time rate limit) is already
                # on the session; the RCPT decision below applies it.
                if decision.is_final_refusal:
                    break
        rcpt = attributes.get("recipient", "")
        tx.current_rcpt = rcpt
        tx.rcpt_attempts += 1
        decision = await pipeline.run(Stage.RCPT, tx)
        tx.current_rcpt = ""
        if not decision.is_final_refusal and decision.action is not Action.DISCARD:
            tx.rcpts.append(rcpt)
            return "DUNNO"
        action = self._action(decision)
        record = record_for(
            tx,
            decision,
            action=decision.action.value,
            reason=decision.reason,
            stage=Stage.RCPT,
            reply=action,
            node=self.runtime.node,
            rcpts=(rcpt,),
        )
        await pipeline.finish(record)
        return action

    def _action(self, decision: Decision) -> str:
        if decision.action is Action.DISCARD:
            return f"DISCARD {decision.text}"
        if (
            decision.action is Action.SOFT_REJECT
            and self.config.policy.defer_if_permit
            and decision.code != 421
        ):
            return f"DEFER_IF_PERMIT {decision.status} {decision.text}"
        return decision.reply()

    def _new_transaction(self, attributes: dict[str, str]) -> Transaction:
        name = attributes.get("client_name", "")
        session = Session(
            client_ip=attributes.get("client_address", "") or "0.0.0.0",
            client_port=_int(attributes.get("client_port", "")),
            client_rdns="" if name in ("", "unknown") else name,
            helo=attributes.get("helo_name", ""),
            esmtp=attributes.get("protocol_name", "").upper().startswith("ESMTP"),
            front="policy",
        )
        tx = Transaction(session, mail_from=attributes.get("sender", ""))
        if attributes.get("queue_id"):
            tx.mta_queue_id = attributes["queue_id"]
        return tx


def _int(text: str) -> int:
    return int(text) if text.isdigit() else 0


def _summary(attributes: dict[str, str]) -> str:
    keys = ("client_address", "helo_name", "sender", "recipient", "instance")
    return " ".join(f"{k}={attributes.get(k, '')}" for k in keys)


class PolicyServer(FrontServer):
    name = "policy"
    default_port = 10040
    stop_grace = 5.0
    stream_limit = MAX_REQUEST

    def listen(self) -> str:
        return self.runtime.config.policy.listen

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await PolicySession(self.runtime, reader, writer).run()
