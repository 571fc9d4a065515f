"""Fuzzing the milter codec (``mailmoat.milter.codec``) with any bytes.

Properties (Hypothesis; budget from the profile in ``conftest.py``):

- reading packets from any byte stream yields packets whose sizes add up to
  what was read, then a clean end or ``ProtocolError``; nothing else is
  raised and no packet is larger than the limit;
- every ``parse_*`` decoder raises nothing but ``ProtocolError``;
- what ``encode`` writes reads back as the same packet, and headers and
  addresses written as an MTA writes them parse back unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct

from hypothesis import given
from hypothesis import strategies as st

from mailmoat.milter import codec

COMMANDS = [
    codec.ABORT,
    codec.BODY,
    codec.CONNECT,
    codec.MACRO,
    codec.BODYEOB,
    codec.HELO,
    codec.HEADER,
    codec.MAIL,
    codec.EOH,
    codec.OPTNEG,
    codec.QUIT,
    codec.RCPT,
    codec.DATA,
]
LIMIT = 4096


def read_all(stream: bytes, max_size: int = LIMIT) -> tuple[list[codec.Packet], bool]:
    """Every packet in ``stream`` and whether it ended in a ProtocolError."""

    async def main() -> tuple[list[codec.Packet], bool]:
        reader = asyncio.StreamReader()
        reader.feed_data(stream)
        reader.feed_eof()
        packets: list[codec.Packet] = []
        while True:
            try:
                packet = await codec.read_packet(reader, max_size)
            except codec.ProtocolError:
                return packets, True
            if packet is None:
                return packets, False
            packets.append(packet)

    return asyncio.run(main())


packet_streams = st.one_of(
    st.binary(max_size=600),
    st.lists(
        st.tuples(st.sampled_from(COMMANDS), st.binary(max_size=64)).map(
            lambda pair: codec.encode(*pair)
        )
        | st.binary(max_size=8),
        max_size=12,
    ).map(b"".join),
)


@given(packet_streams)
def test_any_byte_stream_reads_as_packets_then_a_clean_end_or_protocol_error(
    stream: bytes,
) -> None:
    packets, failed = read_all(stream)
    consumed = sum(4 + len(p.command) + len(p.data) for p in packets)
    assert all(1 + len(p.data) <= LIMIT for p in packets)
    assert consumed <= len(stream)
    if not failed:
        assert consumed == len(stream)
    assert stream[:consumed] == b"".join(codec.encode(p.command, p.data) for p in packets)


@given(st.sampled_from(COMMANDS), st.binary(max_size=2000))
def test_encoded_packets_read_back_unchanged(command: bytes, data: bytes) -> None:
    packets, failed = read_all(codec.encode(command, data) * 2, max_size=1 << 20)
    assert not failed
    assert packets == [codec.Packet(command, data)] * 2


@given(st.binary(max_size=300))
def test_decoders_raise_only_protocol_error(data: bytes) -> None:
    for decode in (
        codec.parse_optneg,
        codec.parse_connect,
        codec.parse_macros,
        codec.parse_header,
        codec.parse_address,
        codec.strings,
    ):
        with contextlib.suppress(codec.ProtocolError):
            decode(data)


no_nul = st.binary(max_size=100).filter(lambda b: b"\x00" not in b)


@given(no_nul, no_nul)
def test_headers_parse_back_unchanged(name: bytes, value: bytes) -> None:
    parsed = codec.parse_header(name + b"\x00" + value + b"\x00")
    assert parsed == (
        name.decode("utf-8", "surrogateescape"),
        value.decode("utf-8", "surrogateescape"),
    )


@given(no_nul.filter(bool), st.lists(no_nul.filter(bool), max_size=4))
def test_addresses_parse_back_unchanged(path: bytes, params: list[bytes]) -> None:
    data = b"<" + path + b">\x00" + b"".join(p + b"\x00" for p in params)
    parsed_path, parsed_params = codec.parse_address(data)
    assert parsed_path == path.decode("utf-8", "surrogateescape")
    assert parsed_params == [p.decode("utf-8", "surrogateescape") for p in params]


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_optneg_parses_back_unchanged(version: int, actions: int, protocol: int) -> None:
    data = struct.pack("!III", version, actions, protocol)
    assert codec.parse_optneg(data) == codec.Negotiation(version, actions, protocol)
