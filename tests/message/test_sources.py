"""iter_messages: single files, mboxes, directories and Maildirs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailmoat.message.sources import iter_messages


def test_single_file_with_envelope_line_is_one_message(tmp_path: Path) -> None:
    path = tmp_path / "one"
    path.write_bytes(b"From a@b Mon Jan  1 00:00:00 2001\nSubject: x\n\nFrom here on\n")
    assert [raw for _, raw in iter_messages(path)] == [path.read_bytes()]


def test_mbox_is_split_and_unquoted(tmp_path: Path) -> None:
    path = tmp_path / "box"
    path.write_bytes(
        b"From a Mon Jan  1 00:00:00 2001\nSubject: 1\n\n>From the start\n\n"
        b"From b Mon Jan  1 00:00:00 2001\nSubject: 2\n\nbody\n"
    )
    messages = list(iter_messages(path))
    assert [label for label, _ in messages] == [f"{path}:0", f"{path}:1"]
    assert messages[0][1].endswith(b"\nFrom the start\n\n")
    assert messages[1][1].startswith(b"From b")


def test_directory_recursive_sorted_without_hidden(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2").write_bytes(b"Subject: 2\n\n")
    (tmp_path / "1").write_bytes(b"Subject: 1\n\n")
    (tmp_path / ".hidden").write_bytes(b"x")
    assert [raw for _, raw in iter_messages(tmp_path)] == [b"Subject: 1\n\n", b"Subject: 2\n\n"]


def test_maildir_new_then_cur(tmp_path: Path) -> None:
    for sub in ("cur", "new", "tmp"):
        (tmp_path / sub).mkdir()
    (tmp_path / "cur" / "a").write_bytes(b"cur")
    (tmp_path / "new" / "b").write_bytes(b"new")
    (tmp_path / "tmp" / "c").write_bytes(b"tmp")
    assert [raw for _, raw in iter_messages(tmp_path)] == [b"new", b"cur"]


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        list(iter_messages(tmp_path / "nope"))
