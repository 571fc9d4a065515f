"""Feature set 2: header features that carry across sites, and only those."""

from __future__ import annotations

import numpy as np

from mailmoat.classify import FeatureConfig, extract
from mailmoat.classify.header_shape import header_shape_keys
from mailmoat.message import parse_message

BASE = (
    b"Received: from mx.site-one.example (mx [10.0.0.1]) by in.site-one.example\n"
    b"Return-Path: <bounce@lists.example>\n"
    b"Delivered-To: jm@site-one.example\n"
    b"List-Id: <talk.lists.example>\n"
    b"X-Loop: talk@lists.example\n"
    b"Date: Mon, 2 Sep 2002 10:00:00 +0100\n"
    b"From: Jane Doe <jane@mail.example>\n"
    b"To: talk@lists.example\n"
    b"Subject: Re: meeting notes\n"
    b"Message-ID: <20020902.abc@mail.example>\n"
    b"\n"
    b"See you at the meeting on Tuesday.\n"
)


def keys(raw: bytes) -> list[str]:
    return header_shape_keys(parse_message(raw))


def features(raw: bytes) -> set[int]:
    return set(extract(parse_message(raw), FeatureConfig()).tolist())


def test_site_artefacts_do_not_change_the_features() -> None:
    other_site = (
        BASE.replace(b"site-one.example", b"elsewhere.example")
        .replace(b"List-Id: <talk.lists.example>\n", b"")
        .replace(b"X-Loop: talk@lists.example\n", b"X-Virus-Scanned: yes\n")
        .replace(b"Return-Path: <bounce@lists.example>", b"Return-Path: <jane@mail.example>")
        .replace(b"2 Sep 2002", b"7 Dec 2026")
    )
    assert features(other_site) == features(BASE)


def test_first_set_still_sees_the_artefacts() -> None:
    legacy = FeatureConfig(feature_set=1)
    other = BASE.replace(b"List-Id: <talk.lists.example>\n", b"")
    assert not np.array_equal(
        extract(parse_message(other), legacy), extract(parse_message(BASE), legacy)
    )


def test_sender_written_fields_change_the_features() -> None:
    base = features(BASE)
    for old, new in [
        (b"Jane Doe <jane@mail.example>", b"jane@mail.example"),
        (b"Subject: Re: meeting notes", b"Subject: MEETING NOTES!!"),
        (b"Message-ID: <20020902.abc@mail.example>\n", b""),
    ]:
        assert features(BASE.replace(old, new)) != base, new


def test_from_shapes() -> None:
    assert "fs:name" in keys(BASE)
    assert "fs:noname" in keys(BASE.replace(b"Jane Doe <jane@mail.example>", b"jane@mail.example"))
    spoof = keys(BASE.replace(b"Jane Doe <", b'"support@bank.example" <'))
    assert {"fs:name-has-at", "fs:name-other-addr"} <= set(spoof)
    digits = keys(BASE.replace(b"jane@mail.example>", b"jane84731@mail.example>"))
    assert "fs:local-digits" in digits
    reply = keys(BASE.replace(b"To:", b"Reply-To: x@other.example\nTo:"))
    assert {"fs:reply-other", "fs:reply-other-domain"} <= set(reply)


def test_subject_recipient_and_message_id_shapes() -> None:
    base = set(keys(BASE))
    assert {"ss:reply", "rc:1", "mi:host-is-sender", "hf:message-id"} <= base
    loud = set(keys(BASE.replace(b"Re: meeting notes", b"FREE MONEY $$$ NOW!")))
    assert {"ss:caps:10", "ss:has$", "ss:has!"} <= loud
    assert "ss:reply" not in loud
    missing = set(keys(BASE.replace(b"Message-ID: <20020902.abc@mail.example>\n", b"")))
    assert "hm:message-id" in missing
    hidden = set(keys(BASE.replace(b"To: talk@lists.example", b"To: undisclosed-recipients:;")))
    assert {"rc:0", "rc:undisclosed", "rc:no-at"} <= hidden
    assert "mi:host-ip" in keys(BASE.replace(b"abc@mail.example", b"abc@192.168.0.1"))


def test_hostile_headers_never_raise() -> None:
    for raw in [
        b"",
        b"From: <<<@@@>>>\nTo: ,,,@\nSubject: \xff\xfe\nMessage-ID: @\n\nx",
        b"From: =?utf-8?b?////?= <a@b>\nReply-To: \nMessage-ID: <>\n\n",
        b"From: " + b"a" * 100_000 + b"\n\n",
    ]:
        assert isinstance(keys(raw), list)
        assert len(extract(parse_message(raw), FeatureConfig())) > 0
