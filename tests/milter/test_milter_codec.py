"""Milter protocol v6 codec: byte layouts as libmilter and Postfix use them."""

from __future__ import annotations

import asyncio
import struct

import pytest

from mailmoat.milter import codec


def _reader(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def test_packet_roundtrip_and_eof() -> None:
    wire = codec.encode(codec.HELO, b"mx.example\x00") + codec.encode(codec.DATA)
    reader = _reader(wire)
    assert await codec.read_packet(reader) == codec.Packet(b"H", b"mx.example\x00")
    assert await codec.read_packet(reader) == codec.Packet(b"T", b"")
    assert await codec.read_packet(reader) is None


@pytest.mark.parametrize(
    ("label", "wire"),
    [
        ("zero length", struct.pack("!I", 0)),
        ("too long", struct.pack("!I", codec.MAX_PACKET + 1) + b"B"),
        ("truncated length", b"\x00\x00"),
        ("truncated body", struct.pack("!I", 10) + b"Bshort"),
    ],
)
async def test_bad_packets(label: str, wire: bytes) -> None:
    with pytest.raises(codec.ProtocolError):
        await codec.read_packet(_reader(wire))


@pytest.mark.parametrize(
    ("label", "data", "expected"),
    [
        (
            "ipv4",
            b"mail.example.org\x004" + struct.pack("!H", 40000) + b"192.0.2.1\x00",
            codec.Connect("mail.example.org", b"4", 40000, "192.0.2.1"),
        ),
        (
            "ipv6 with IPv6: prefix",
            b"[2001:db8::1]\x006" + struct.pack("!H", 25) + b"IPv6:2001:db8::1\x00",
            codec.Connect("[2001:db8::1]", b"6", 25, "2001:db8::1"),
        ),
        (
            "unix socket",
            b"localhost\x00L\x00\x00/var/run/x\x00",
            codec.Connect("localhost", b"L", 0, "/var/run/x"),
        ),
        ("unknown family", b"unknown\x00U", codec.Connect("unknown", b"U", 0, "")),
    ],
)
def test_parse_connect(label: str, data: bytes, expected: codec.Connect) -> None:
    assert codec.parse_connect(data) == expected


def test_parse_connect_rejects_garbage() -> None:
    with pytest.raises(codec.ProtocolError):
        codec.parse_connect(b"no-nul")


def test_parse_macros_address_header() -> None:
    assert codec.parse_macros(b"Ci\x00ABC123\x00{daemon_name}\x00mx\x00") == (
        b"C",
        {"i": "ABC123", "daemon_name": "mx"},
    )
    assert codec.parse_address(b"<a@b.example>\x00SIZE=10\x00BODY=8BITMIME\x00") == (
        "a@b.example",
        ["SIZE=10", "BODY=8BITMIME"],
    )
    assert codec.parse_address(b"<>\x00") == ("", [])
    assert codec.parse_header(b"Subject\x00 hello\x00") == ("Subject", " hello")


def test_optneg_keeps_only_offered_and_wanted_flags() -> None:
    offered = codec.Negotiation(6, 0x1FF, 0x1FFFFF)
    answer = codec.reply_optneg(offered)
    assert answer[4:5] == b"O"
    version, actions, protocol = struct.unpack("!III", answer[5:])
    assert version == 6
    assert actions == codec.SMFIF_ADDHDRS | codec.SMFIF_CHGHDRS | codec.SMFIF_QUARANTINE
    assert protocol == codec.WANTED_PROTOCOL
    # An MTA that offers less gets only what it offers.
    version, actions, protocol = struct.unpack(
        "!III", codec.reply_optneg(codec.Negotiation(2, codec.SMFIF_ADDHDRS, 0))[5:]
    )
    assert (version, actions, protocol) == (2, codec.SMFIF_ADDHDRS, 0)
    with pytest.raises(codec.ProtocolError):
        codec.reply_optneg(codec.Negotiation(1, 0, 0))


def test_reply_layouts() -> None:
    assert codec.reply_code("550 5.7.1 Spam 100% sure") == codec.encode(
        b"y", b"550 5.7.1 Spam 100%% sure\x00"
    )
    assert codec.reply_code("451 4.7.1 a\r\n b") == codec.encode(b"y", b"451 4.7.1 a b\x00")
    with pytest.raises(ValueError):
        codec.reply_code("250 ok")
    assert codec.reply_insheader(0, "X-Spam-Score", " 1.00") == codec.encode(
        b"i", b"\x00\x00\x00\x00X-Spam-Score\x00 1.00\x00"
    )
    assert codec.reply_chgheader(2, "X-Spam-Flag") == codec.encode(
        b"m", b"\x00\x00\x00\x02X-Spam-Flag\x00\x00"
    )
    assert codec.reply_addheader("A", "b") == codec.encode(b"h", b"A\x00b\x00")
    assert codec.reply_quarantine("why") == codec.encode(b"q", b"why\x00")
    assert codec.reply(codec.ACCEPT) == b"\x00\x00\x00\x01a"
