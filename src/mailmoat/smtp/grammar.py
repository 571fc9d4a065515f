"""The grammar of SMTP commands as the front reads them (RFC 5321, 6531, 1870).

Contract: pure functions on one command's text. ``split_command`` splits a
line into its verb (upper case) and argument, or gives the ``500`` for a
line that is no command; ``envelope_address`` reads the address and
parameters of MAIL FROM (``sender``) or RCPT TO, or gives the
``501``/``555``; ``split_path`` separates a MAIL/RCPT path from its
parameters; ``mail_parameters`` checks MAIL FROM parameters and gives the
options we pass on (``SIZE=``, ``BODY=``, ``SMTPUTF8``) or the refusal;
``address_encoding_problem`` refuses an address that is not valid UTF-8 or
non-ASCII without SMTPUTF8; ``hostname_problem`` checks a HELO/EHLO
argument. None raises on any input.
"""

from __future__ import annotations

import re

from mailmoat.core.relay import AddressError, parse_path
from mailmoat.smtp import answers
from mailmoat.smtp.answers import Answer

_CONTROL = re.compile("[\x00-\x1f\x7f]")


def split_command(text: bytes) -> tuple[str, str] | Answer:
    """``b"MAIL FROM:<a@b>"`` -> ``("MAIL", "FROM:<a@b>")``; the line
    ending already removed."""
    if b"\x00" in text:
        return answers.NUL_IN_COMMAND
    verb_bytes, _, arg_bytes = text.partition(b" ")
    try:
        verb = verb_bytes.decode("ascii").upper()
    except UnicodeDecodeError:
        return answers.BAD_COMMAND
    return verb, arg_bytes.decode("utf-8", "surrogateescape").strip()


def hostname_problem(arg: str, verb: str) -> Answer | None:
    if not arg or " " in arg:
        return answers.syntax(f"{verb} hostname")
    if _CONTROL.search(arg):
        # A bare CR (or any control) would travel on in our Received and
        # Authentication-Results fields and in XFORWARD HELO.
        return answers.HOSTNAME_CONTROL
    return None


def envelope_address(arg: str, *, sender: bool) -> tuple[str, list[str]] | Answer:
    """``FROM:<a@b.test> SIZE=1`` -> ``("a@b.test", ["SIZE=1"])``; RCPT TO
    takes no parameters (refused before the address is read)."""
    keyword = "FROM:" if sender else "TO:"
    if not arg.upper().startswith(keyword):
        return answers.MAIL_SYNTAX if sender else answers.RCPT_SYNTAX
    path, params = split_path(arg[len(keyword) :])
    if params and not sender:
        return unsupported_parameter(params[0])
    try:
        return parse_path(path, allow_null=sender), params
    except AddressError as exc:
        if sender:
            return Answer(501, "5.1.7", f"Bad sender address syntax: {exc}")
        return Answer(501, "5.1.3", f"Bad recipient address syntax: {exc}")


def split_path(rest: str) -> tuple[str, list[str]]:
    """``" <a@b> SIZE=1"`` -> ``("<a@b>", ["SIZE=1"])``."""
    rest = rest.strip()
    if not rest:
        return "", []
    if rest.startswith("<"):
        end = rest.find(">")
        if end < 0:
            return rest, []
        return rest[: end + 1], rest[end + 1 :].split()
    head, *params = rest.split()
    return head if head else "", params


def mail_parameters(params: list[str], *, esmtp: bool, max_size: int) -> list[str] | Answer:
    """The MAIL FROM options we keep, or the refusal of the first bad one."""
    options: list[str] = []
    if params and not esmtp:
        return answers.syntax("MAIL FROM:<address> (no parameters after HELO)")
    for param in params:
        keyword, _, value = param.partition("=")
        keyword = keyword.upper()
        if keyword == "SIZE" and value.isdigit():
            if int(value) > max_size:
                return answers.MESSAGE_TOO_BIG
            options.append(f"SIZE={int(value)}")
        elif keyword == "BODY" and value.upper() in ("7BIT", "8BITMIME"):
            options.append(f"BODY={value.upper()}")
        elif keyword == "SMTPUTF8" and not value:
            options.append("SMTPUTF8")
        else:
            return unsupported_parameter(param)
    return options


def unsupported_parameter(param: str) -> Answer:
    return Answer(555, "5.5.4", f"Unsupported parameter {param[:40]}")


def declared_size(options: list[str]) -> int:
    for option in options:
        if option.startswith("SIZE="):
            return int(option[5:])
    return 0


def address_encoding_problem(address: str, options: list[str]) -> Answer | None:
    """The 553 for an address that is not valid UTF-8 (the command was
    decoded with surrogate escapes), or non-ASCII without SMTPUTF8."""
    if address.isascii():
        return None
    try:
        address.encode("utf-8")
    except UnicodeEncodeError:
        return Answer(553, "5.6.7", "Address is not valid UTF-8")
    if "SMTPUTF8" not in options:
        return Answer(553, "5.6.7", "Non-ASCII address requires SMTPUTF8")
    return None
