"""Perl regexes translated to Python: what translates, what is counted as untranslatable."""

from __future__ import annotations

import re

import pytest

from mailmoat.rules.perlre import Untranslatable, compile_perl, split_delimited, translate


@pytest.mark.parametrize(
    ("written", "pattern", "flags"),
    [
        ("/abc/i", "abc", "i"),
        ("m{a/b}x", "a/b", "x"),
        ("m!a\\!b!", "a!b", ""),
        ("m#x#", "x", ""),
        ("/a\\/b/", "a\\/b", ""),
        ("  /pad/  ", "pad", ""),
    ],
)
def test_delimiters(written: str, pattern: str, flags: str) -> None:
    assert split_delimited(written) == (pattern, flags)


@pytest.mark.parametrize("written", ["abc", "/unterminated", "/a/ trailing", "/a/1"])
def test_bad_delimiters_are_untranslatable(written: str) -> None:
    with pytest.raises(Untranslatable):
        split_delimited(written)


# (Perl pattern, modifiers, text that must match, text that must not)
TRANSLATIONS = [
    (r"end\z", "", "the end", "the end\n"),
    (r"end\Z", "", "the end\n", "the end\nx"),
    (r"a\hb", "", "a\tb", "a\nb"),
    (r"a\vb", "", "a\nb", "a b"),
    (r"a\Hb", "", "axb", "a b"),
    (r"a\Rb", "", "a\r\nb", "ab"),
    (r"[[:alpha:]]+\d", "", "abc1", "123"),
    (r"[[:upper:][:digit:]]{3}", "", "A1B", "abc"),
    (r"foo(?i)BAR", "", "fooBaR", "FOObar"),
    (r"(?:x(?i)y)z", "", "xYz", "xyZ"),
    (r"\Qa.b*c\E+", "", "a.b*cc", "aXbbc"),
    (r"\x{263a}", "", "\u263a".encode().decode("latin-1"), "x"),
    (r"\x41\x9", "", "A\t", "A9"),
    (r"(?<word>ab)\k<word>", "", "abab", "abba"),
    (r"(a)\g{1}", "", "aa", "ab"),
    (r"a++b", "", "aab", "ac"),
    (r"(?>a+)b", "", "aab", "aaa"),
    (r"\e", "", "\x1b", "e"),
    (r"hello \# world", "x", "hello#world", "hello world"),
    (r"\bfree\b", "i", "FREE stuff", "freedom"),
    (r"^line$", "m", "first\nline\nlast", "first line"),
    (r"a.b", "s", "a\nb", "a\n\nb"),
    (r"\y\i", "", "yi", "xi"),  # unknown letter escapes are the letter, as in Perl
    (r"[\w]\d", "", "a1", "\xe91"),  # ASCII only, as Perl on bytes
    (r"caf\xe9", "i", "CAF\xe9", "CAF\xc9"),  # case folding is ASCII only
]


@pytest.mark.parametrize(("pattern", "flags", "hit", "miss"), TRANSLATIONS)
def test_translations(pattern: str, flags: str, hit: str, miss: str) -> None:
    regex = compile_perl(pattern, flags)
    assert regex.search(hit), (regex.pattern, hit)
    assert not regex.search(miss), (regex.pattern, miss)
    assert regex.flags & re.ASCII


@pytest.mark.parametrize(
    ("pattern", "flags", "reason"),
    [
        (r"foo\Kbar", "", "\\K"),
        (r"\Gx", "", "\\G"),
        (r"\p{L}", "", "\\p"),
        (r"(?R)", "", "recursion"),
        (r"(?{ 1 })", "", "code block"),
        (r"(?|a|b)", "", "branch reset"),
        (r"[[:^alpha:]]", "", "negated POSIX class"),
        (r"(?<=a+)b", "", "variable-length look-behind"),
        (r"abc", "e", "modifier /e"),
        (r"(unbalanced", "", "unbalanced parenthesis"),
        (r"[\x{263a}]", "", "wide character in a class"),
    ],
)
def test_untranslatable_constructs_name_their_reason(pattern: str, flags: str, reason: str) -> None:
    with pytest.raises(Untranslatable) as caught:
        compile_perl(pattern, flags)
    assert caught.value.args[0] == reason


def test_translation_keeps_what_python_already_reads() -> None:
    assert translate(r"(?:ab|c)+\s*[a-z]{2,3}") == r"(?:ab|c)+\s*[a-z]{2,3}"
    assert translate(r"[a[b]") == r"[a\[b]"  # no nested-set warning, same meaning
