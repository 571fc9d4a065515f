"""Perl regexes, as SpamAssassin rule files write them, translated to Python ``re``.

Contract: ``split_delimited`` takes ``/re/flags``, ``m{re}flags``,
``m!re!flags`` (any delimiter) and returns the pattern and its flags;
``translate`` turns the Perl pattern into an equivalent Python pattern and
``compile_perl`` compiles it. SpamAssassin matches byte strings, so the
texts these regexes search are byte strings seen as Latin-1 ``str`` (one
character per byte) and every regex is compiled with ``re.ASCII``: ``\\w``,
``\\d``, ``\\s``, ``\\b`` and case folding are ASCII only, as in Perl on
bytes. Translated: ``\\z`` ``\\Z`` ``\\h`` ``\\H`` ``\\v`` ``\\V`` ``\\R`` ``\\e``
``\\x{...}`` (as UTF-8 bytes) ``\\Q...\\E`` ``\\k<name>`` ``\\g{N}``, POSIX
classes ``[[:alpha:]]``, ``(?<name>``, ``(?'name'``, inline flags in mid
pattern (scoped to the rest of their group), unknown letter escapes (the
letter), stray ``[`` in classes. Possessive quantifiers and atomic groups
pass through (Python 3.11 has both).

Failure mode: what has no Python equivalent (``\\K``, ``\\G``, ``\\p{..}``,
recursion, code blocks, branch reset, variable-length look-behind...) raises
``Untranslatable`` with a short reason, the key the loaders count by.
"""

from __future__ import annotations

import re
import warnings

_CLOSERS = {"{": "}", "(": ")", "[": "]", "<": ">"}
_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}
_IGNORED_FLAGS = set("gopadlu")
_HSPACE = "\\t \\xa0"
_VSPACE = "\\n\\x0b\\f\\r\\x85"
_POSIX = {
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "alnum": "a-zA-Z0-9",
    "upper": "A-Z",
    "lower": "a-z",
    "space": "\\s",
    "blank": " \\t",
    "punct": "!-/:-@\\[-`{-~",
    "xdigit": "0-9A-Fa-f",
    "word": "\\w",
    "cntrl": "\\x00-\\x1f\\x7f",
    "print": " -~",
    "graph": "!-~",
    "ascii": "\\x00-\\x7f",
}
_PYTHON_ESCAPES = set("abBdDfnrsStwWAZ")


class Untranslatable(ValueError):
    """A Perl construct with no Python equivalent; ``args[0]`` is the reason."""


def split_delimited(text: str) -> tuple[str, str]:
    """``(pattern, flags)`` from ``/re/flags`` or ``m<delim>re<delim>flags``."""
    text = text.strip()
    if text.startswith("/"):
        opener, body = "/", text[1:]
    elif len(text) >= 2 and text[0] == "m" and not text[1].isalnum() and not text[1].isspace():
        opener, body = text[1], text[2:]
    else:
        raise Untranslatable("not a delimited regex")
    closer = _CLOSERS.get(opener, opener)
    end = body.rfind(closer)
    if end < 0:
        raise Untranslatable("unterminated regex")
    flags = body[end + 1 :]
    if not re.fullmatch(r"[a-z]*", flags):
        raise Untranslatable("text after the regex")
    pattern = body[:end]
    if opener not in "/\\" and opener == closer:
        pattern = pattern.replace("\\" + opener, opener)
    return pattern, flags


def python_flags(flags: str) -> int:
    """Python ``re`` flags for Perl modifiers; ``re.ASCII`` always (byte semantics)."""
    value = re.ASCII
    for flag in flags:
        if flag in _FLAGS:
            value |= _FLAGS[flag]
        elif flag not in _IGNORED_FLAGS:
            raise Untranslatable(f"modifier /{flag}")
    return value


def compile_perl(pattern: str, flags: str = "") -> re.Pattern[str]:
    """The Python regex for a Perl pattern and modifiers (``Untranslatable`` if none)."""
    value = python_flags(flags)
    source = translate(pattern)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return re.compile(source, value)
    except re.error as exc:
        raise Untranslatable(_reason(exc.msg)) from None
    except (OverflowError, RecursionError):
        raise Untranslatable("too large") from None


def _reason(message: str) -> str:
    if "look-behind" in message:
        return "variable-length look-behind"
    return "python: " + re.sub(r"\d+", "N", message.split(" at position")[0])


def _byte_escapes(code: int) -> str:
    if code < 0x100:
        return f"\\x{code:02x}"
    return "".join(f"\\x{b:02x}" for b in chr(code).encode("utf-8", "surrogatepass"))


class _Translator:
    def __init__(self, pattern: str) -> None:
        self.src = pattern
        self.pos = 0
        self.out: list[str] = []
        # per open group: how many "(?flags:" we opened inside it still to close
        self.scoped: list[int] = [0]

    def run(self) -> str:
        src = self.src
        while self.pos < len(src):
            char = src[self.pos]
            if char == "\\":
                self.out.append(self.escape(in_class=False))
            elif char == "[":
                self.out.append(self.char_class())
            elif char == "(":
                self.open_group()
            elif char == ")":
                self.out.append(")" * self.scoped.pop() + ")")
                if not self.scoped:
                    raise Untranslatable("unbalanced parenthesis")
                self.pos += 1
            else:
                self.out.append(char)
                self.pos += 1
        if len(self.scoped) != 1:
            raise Untranslatable("unbalanced parenthesis")
        return "".join(self.out) + ")" * self.scoped[0]

    def escape(self, in_class: bool) -> str:
        src = self.src
        if self.pos + 1 >= len(src):
            raise Untranslatable("trailing backslash")
        char = src[self.pos + 1]
        self.pos += 2
        if char == "Q":
            end = src.find("\\E", self.pos)
            end = len(src) if end < 0 else end
            quoted, self.pos = src[self.pos : end], min(len(src), end + 2)
            return "".join(f"\\{c}" if not c.isalnum() else c for c in quoted)
        if char == "E":
            return ""
        if char == "x":
            return self.hex_escape(in_class)
        simple = {"e": "\\x1b", "z": "\\Z"}
        if char in simple:
            return simple[char]
        if char == "Z":
            return "\\Z" if in_class else "(?=\\n?\\Z)"
        if char in "hv":
            chars = _HSPACE if char == "h" else _VSPACE
            return chars if in_class else f"[{chars}]"
        if char in "HV":
            if in_class:
                raise Untranslatable(f"\\{char} in a class")
            return f"[^{_HSPACE if char == 'H' else _VSPACE}]"
        if char == "R":
            return "(?:\\r\\n|[\\n\\x0b\\f\\r\\x85])"
        if char == "c" and self.pos < len(src):
            self.pos += 1
            return f"\\x{ord(src[self.pos - 1].upper()) ^ 0x40:02x}"
        if char == "k" and not in_class:
            match = re.compile(r"<(\w+)>|\{(\w+)\}|'(\w+)'").match(src, self.pos)
            if match is None:
                raise Untranslatable("\\k")
            self.pos = match.end()
            return f"(?P={match.group(match.lastindex or 1)})"
        if char == "g" and not in_class:
            match = re.compile(r"\{(\d+)\}|(\d+)").match(src, self.pos)
            if match is None:
                raise Untranslatable("\\g relative or named")
            self.pos = match.end()
            return f"(?:\\{match.group(match.lastindex or 1)})"
        if char in "KGpPXCNoluLU":
            raise Untranslatable(f"\\{char}")
        if char.isdigit() or char in _PYTHON_ESCAPES:
            if in_class and char in "AZB":
                return char
            return "\\" + char
        if char.isalpha():
            return char  # Perl: an unknown letter escape is the letter
        return "\\" + char

    def hex_escape(self, in_class: bool) -> str:
        src = self.src
        if src.startswith("{", self.pos):
            end = src.find("}", self.pos)
            if end < 0:
                raise Untranslatable("bad \\x{...}")
            digits, self.pos = src[self.pos + 1 : end].strip(), end + 1
        else:
            match = re.compile(r"[0-9A-Fa-f]{0,2}").match(src, self.pos)
            assert match is not None
            digits, self.pos = match.group(), match.end()
        try:
            code = int(digits or "0", 16)
        except ValueError:
            raise Untranslatable("bad \\x{...}") from None
        if code > 0x10FFFF:
            raise Untranslatable("bad \\x{...}")
        if code >= 0x100 and in_class:
            raise Untranslatable("wide character in a class")
        escaped = _byte_escapes(code)
        return escaped if code < 0x100 else f"(?:{escaped})"

    def char_class(self) -> str:
        src = self.src
        parts = ["["]
        self.pos += 1
        if src.startswith("^", self.pos):
            parts.append("^")
            self.pos += 1
        if src.startswith("]", self.pos):
            parts.append("\\]")
            self.pos += 1
        while True:
            if self.pos >= len(src):
                raise Untranslatable("unterminated character class")
            char = src[self.pos]
            if char == "]":
                self.pos += 1
                return "".join(parts) + "]"
            if char == "\\":
                parts.append(self.escape(in_class=True))
            elif char == "[" and src.startswith(("[:", "[=", "[."), self.pos):
                match = re.compile(r"\[:(\^?)(\w+):\]").match(src, self.pos)
                if match is None or match.group(2) not in _POSIX:
                    raise Untranslatable("POSIX class")
                if match.group(1):
                    raise Untranslatable("negated POSIX class")
                parts.append(_POSIX[match.group(2)])
                self.pos = match.end()
            elif char in "[&~|" or (char == "-" and src.startswith("--", self.pos)):
                parts.append("\\" + char)  # keeps Python's nested-set warning away
                self.pos += 1
            else:
                parts.append(char)
                self.pos += 1

    def open_group(self) -> None:
        src = self.src
        if not src.startswith("(?", self.pos):
            self.out.append("(")
            self.scoped.append(0)
            self.pos += 1
            return
        rest = src[self.pos + 2 : self.pos + 4]
        if rest.startswith("#"):
            end = src.find(")", self.pos)
            self.pos = len(src) if end < 0 else end + 1
            return
        named = re.compile(r"\(\?(?:P?<(\w+)>|'(\w+)')").match(src, self.pos)
        if named:
            self.out.append(f"(?P<{named.group(1) or named.group(2)}>")
            self.scoped.append(0)
            self.pos = named.end()
            return
        if rest[:1] in ("=", "!", ":", ">") or rest in ("<=", "<!"):
            self.out.append(src[self.pos : self.pos + 2 + (2 if rest in ("<=", "<!") else 1)])
            self.scoped.append(0)
            self.pos += 2 + (2 if rest in ("<=", "<!") else 1)
            return
        if rest.startswith("(") and re.compile(r"\(\?\((\d+|\w+)\)").match(src, self.pos):
            self.out.append("(?(")
            self.scoped.append(0)
            self.pos += 3
            return
        flags = re.compile(r"\(\?([a-z^]*)(?:-([a-z]*))?([:)])").match(src, self.pos)
        if flags is None:
            raise Untranslatable(f"group (?{rest[:1]}")
        on, off, closer = flags.group(1), flags.group(2) or "", flags.group(3)
        if "^" in on or set(on + off) - set("imsxpadlu"):
            raise Untranslatable("inline modifiers")
        on = "".join(c for c in on if c in "imsx")
        off = "".join(c for c in off if c in "imsx")
        self.pos = flags.end()
        spec = on + (f"-{off}" if off else "")
        if closer == ":":
            self.out.append(f"(?{spec}:" if spec else "(?:")
            self.scoped.append(0)
        elif spec:
            # (?i) in mid pattern: scoped to the rest of the enclosing group.
            self.out.append(f"(?{spec}:")
            self.scoped[-1] += 1


def translate(pattern: str) -> str:
    """The Python pattern for a Perl pattern (``Untranslatable`` if there is none)."""
    if "(?{" in pattern or "(??{" in pattern:
        raise Untranslatable("code block")
    if re.search(r"\(\?(?:R|[+-]?\d|&|P>)", pattern):
        raise Untranslatable("recursion")
    if "(?|" in pattern:
        raise Untranslatable("branch reset")
    if re.search(r"\(\*[A-Z]", pattern):
        raise Untranslatable("backtracking verb")
    return _Translator(pattern).run()
