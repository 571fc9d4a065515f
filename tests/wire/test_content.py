"""DATA payload transforms: transparency, line ends, header edits."""

import pytest

from mailmoat.wire.content import (
    edit_headers,
    fold,
    inspect,
    normalize_line_ends,
    stuff,
    unstuff,
)


def test_unstuff_and_stuff_are_inverse() -> None:
    message = b".leading\r\nmiddle\r\n..two\r\n.\r\nend\r\n"
    assert unstuff(stuff(message)) == message
    assert stuff(b".x\r\n.\r\n") == b"..x\r\n..\r\n"


@pytest.mark.parametrize(
    ("label", "payload"),
    [
        ("LF.LF", b"a\n.\nb\r\n"),
        ("CR.CR", b"a\r.\rb\r\n"),
        ("LF.CRLF", b"a\n.\r\nb\r\n"),
        ("CRLF.LF", b"a\r\n.\nb\r\n"),
        ("CR.CRLF", b"a\r.\r\nb\r\n"),
    ],
)
def test_normalized_smuggling_variants_cannot_end_data_upstream(label: str, payload: bytes) -> None:
    wire = stuff(normalize_line_ends(unstuff(payload)))
    assert b"\r\n.\r\n" not in wire, label
    assert inspect(payload, 998).bare_newline, label


def test_inspect_flags() -> None:
    facts = inspect(b"a\x00b\r\n\xe9\r\n" + b"x" * 1200 + b"\r\n", 998)
    assert facts.has_nul and facts.has_8bit and facts.long_line and not facts.bare_newline
    clean = inspect(b"a\r\n" + b"x" * 998 + b"\r\n", 998)
    assert not (clean.has_nul or clean.has_8bit or clean.long_line or clean.bare_newline)
    assert not inspect(b"x" * 100_000 + b"\r\n", 0).long_line  # 0: no limit


def test_edit_headers_prepends_and_drops_only_selected() -> None:
    message = (
        b"X-Spam-Status: No, fake\r\n\tcontinued\r\nSubject: hi\r\n"
        b"X-Other: keep\r\n\r\nX-Spam-Status: in body stays\r\n"
    )
    edited = edit_headers(
        message, [("Received", "from x")], lambda name, value: name.lower() == "x-spam-status"
    )
    assert edited == (
        b"Received: from x\r\nSubject: hi\r\nX-Other: keep\r\n\r\nX-Spam-Status: in body stays\r\n"
    )


def test_fold_keeps_lines_short() -> None:
    value = " ".join(f"SYMBOL_{n}(1.5)" for n in range(30))
    folded = fold("X-Spam-Symbols", value)
    assert all(len(line) <= 78 for line in folded.split("\r\n"))
    assert folded.replace("\r\n\t", " ") == f"X-Spam-Symbols: {value}"
