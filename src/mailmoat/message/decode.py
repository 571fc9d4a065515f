"""Tolerant decoding: charsets, transfer encodings, RFC 2047 header words.

Contract: every function here returns a value for any input and never raises.

Why not only the stdlib: ``bytes.decode`` raises on unknown or lying
charsets, ``email.header.decode_header`` raises on broken base64 words and
keeps undecoded runs as bytes, and ``Message.get_payload(decode=True)``
decodes the whole payload however large. These helpers add the fallbacks
(declared charset, then UTF-8, then cp1252 with replacement), drop words
that do not decode, and decode at most a given number of bytes. Codecs that
are no character sets (``undefined`` raises on any input, ``idna`` and
``punycode`` on most bytes, the escape codecs interpret backslashes) count
as unknown labels: the text falls back as for any unknown charset.
"""

from __future__ import annotations

import binascii
import codecs
import re

# Names seen in the wild that codecs does not know, mapped to what senders meant.
_CHARSET_ALIASES = {
    "default": "cp1252",
    "default_charset": "cp1252",
    "x-unknown": "cp1252",
    "unknown-8bit": "cp1252",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "ks_c_5601-1987": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-sjis": "shift_jis",
    "x-mac-roman": "mac_roman",
}
# Python codecs that a MIME label may name but that are no character sets.
_NOT_CHARSETS = frozenset(
    {"undefined", "idna", "punycode", "unicode-escape", "raw-unicode-escape", "charmap"}
)
_TEXT_CODECS: dict[str, str | None] = {}
_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")
_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,40})\?([bBqQ])\?([^?]*)\?=")
_BETWEEN_WORDS = re.compile(r"(\?=)[ \t\r\n]+(=\?)")
_SURROGATE = re.compile("[\udc80-\udcff]")


def codec_for(charset: str | None) -> str | None:
    """A text codec name for a MIME charset label, None when unknown."""
    if not charset:
        return None
    label = charset.strip().strip("\"'").lower()
    if label in _TEXT_CODECS:
        return _TEXT_CODECS[label]
    name: str | None = _CHARSET_ALIASES.get(label, label)
    try:
        info = codecs.lookup(name or "")
        # Refuse bytes-to-bytes transforms (base64, zlib, rot13...).
        name = info.name if getattr(info, "_is_text_encoding", True) else None
        if name in _NOT_CHARSETS:
            name = None
    except (LookupError, ValueError):
        name = None
    if len(_TEXT_CODECS) < 4096:
        _TEXT_CODECS[label] = name
    return name


def decode_text(data: bytes, charset: str | None = None) -> str:
    """Bytes to text: the declared charset, else UTF-8, else cp1252."""
    codec = codec_for(charset)
    if codec is not None and codec != "cp1252":
        try:
            return data.decode(codec)
        except Exception:  # a codec may raise anything on hostile bytes
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode(codec or "cp1252", errors="replace")
    except Exception:
        return data.decode("cp1252", errors="replace")  # maps every byte


def decode_transfer(data: bytes, encoding: str, limit: int) -> tuple[bytes, bool]:
    """Undo a Content-Transfer-Encoding on at most about ``limit`` output
    bytes; returns (decoded, truncated)."""
    cte = encoding.strip().lower()
    if cte == "base64":
        truncated = len(data) > limit * 4 // 3 + 4096
        clean = _B64_JUNK.sub(b"", data[: limit * 4 // 3 + 4096] if truncated else data)
        # Padding was stripped with the junk: re-pad (one stray char is dropped).
        clean = clean[:-1] if len(clean) % 4 == 1 else clean + b"=" * (-len(clean) % 4)
        try:
            out = binascii.a2b_base64(clean)
        except (binascii.Error, ValueError):
            out = b""
        return out[:limit], truncated or len(out) > limit
    if cte == "quoted-printable":
        truncated = len(data) > limit
        try:
            out = binascii.a2b_qp(data[:limit])
        except (binascii.Error, ValueError):
            out = data[:limit]
        return out, truncated
    return data[:limit], len(data) > limit


def surrogate_bytes(text: str) -> bytes:
    """Recover the bytes behind a compat32 str (ASCII + surrogateescape)."""
    try:
        return text.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")


def decode_header_value(value: str) -> str:
    """Unfold a raw header value, repair 8-bit bytes and decode RFC 2047 words."""
    text = (unfold(value) if "\n" in value else value).strip()
    if not text.isascii() and _SURROGATE.search(text):
        text = decode_text(surrogate_bytes(text))
    if "=?" not in text:
        return text
    text = _BETWEEN_WORDS.sub(r"\1\2", text)
    return _ENCODED_WORD.sub(_decode_word, text)


def unfold(value: str) -> str:
    """``value`` with each line break and the blanks after it (regex
    ``\\r?\\n[ \\t]*``) as one space; split and joined, which costs less
    than the regex substitution."""
    lines = value.replace("\r\n", "\n").split("\n")
    return " ".join([lines[0], *(line.lstrip(" \t") for line in lines[1:])])


def _decode_word(match: re.Match[str]) -> str:
    charset, kind, payload = match.group(1), match.group(2).lower(), match.group(3)
    # RFC 2231 language suffix: =?utf-8*en?Q?...?=
    charset = charset.split("*", 1)[0]
    raw = payload.encode("ascii", "replace")
    try:
        if kind == "b":
            raw = _B64_JUNK.sub(b"", raw)
            raw = binascii.a2b_base64(raw + b"=" * (-len(raw) % 4))
        else:
            raw = binascii.a2b_qp(raw.replace(b"_", b" "), header=True)
    except (binascii.Error, ValueError):
        return ""
    return decode_text(raw, charset)
