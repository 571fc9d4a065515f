"""dns.wire against dnspython: the same queries, the same reading of responses.

Unit tests (no network): queries are compared byte for byte with what
dnspython's ``make_query`` writes; responses are generated with dnspython
(then some of them damaged at random), and whenever ``wire.parse`` accepts
one, dnspython must accept it as the response to the query too, and the
resolver must read both into the same ``DnsAnswer``.
"""

from __future__ import annotations

import random

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from mailmoat.dns import CachingResolver, wire
from mailmoat.dns.transport import as_message

NAMES = [
    "example.com",
    "2.0.2.192.zen.test",
    "_dmarc.Example.ORG",
    "a.b.c.d.e.f.g",
    "x" * 63 + ".test",
    "x" * 64 + ".test",
    "a..b",
    ".a",
    "a.",
    ".",
    "@",
    "",
    "bücher.de",
    "esc\\.aped.test",
    "sp ace.test",
    ".".join(["abcdefghij"] * 24),
    ".".join(["abcdefghi"] * 25),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("rdtype", ["A", "TXT", "MX", "PTR", "AAAA", "SPF"])
def test_the_question_is_dnspythons(name: str, rdtype: str) -> None:
    ours = wire.question(name, rdtype)
    try:
        theirs = dns.message.make_query(dns.name.from_text(name), rdtype).to_wire()[12:]
    except (dns.exception.DNSException, ValueError):
        assert ours is None
        return
    assert ours is None or ours == theirs


def test_the_query_is_dnspythons() -> None:
    question = wire.question("example.com", "TXT")
    assert question is not None
    made = dns.message.make_query("example.com", "TXT")
    made.id = 4242
    assert wire.query(4242, question) == made.to_wire()


def _response(rnd: random.Random, query: dns.message.Message, rdtype: str) -> bytes:
    response = dns.message.make_response(query)
    response.set_rcode(rnd.choice([dns.rcode.NOERROR] * 4 + [dns.rcode.NXDOMAIN] * 2 + [2, 5]))
    qname = query.question[0].name
    owner = dns.name.from_text(
        rnd.choice([qname.to_text().upper(), qname.to_text(), "other.test."])
    )
    values = {
        "A": ["192.0.2.1", "127.0.0.2", "127.0.0.4"],
        "TXT": ['"v=spf1 -all"', '"a" "b"', '"\\255\\254 odd"', '""'],
        "MX": ["10 mx.test.", "20 MX.test."],
    }
    kind = rdtype if rnd.random() < 0.85 else rnd.choice(["A", "TXT", "CNAME"])
    for _ in range(rnd.choice([0, 0, 1, 1, 2, 3])):
        text = "target.test." if kind == "CNAME" else rnd.choice(values[kind])
        rdata = dns.rdata.from_text("IN", kind, text)
        rrset = response.find_rrset(
            response.answer, owner, dns.rdataclass.IN, dns.rdatatype.from_text(kind), create=True
        )
        rrset.add(rdata, rnd.choice([0, 30, 300, 86400]))
    zone = dns.name.from_text("test.")
    if rnd.random() < 0.7:
        soa = dns.rdata.from_text(
            "IN", "SOA", f"ns.test. host.test. 1 3600 600 86400 {rnd.choice([0, 120, 7200])}"
        )
        rrset = response.find_rrset(
            response.authority, zone, dns.rdataclass.IN, dns.rdatatype.SOA, create=True
        )
        rrset.add(soa, rnd.choice([60, 600, 3600]))
    if rnd.random() < 0.3:
        rrset = response.find_rrset(
            response.authority, zone, dns.rdataclass.IN, dns.rdatatype.NS, create=True
        )
        rrset.add(dns.rdata.from_text("IN", "NS", "ns.test."), 600)
    if rnd.random() < 0.3:
        glue = dns.name.from_text("ns.test.")
        for kind, text in (("A", "192.0.2.53"), ("AAAA", "2001:db8::53")):
            rrset = response.find_rrset(
                response.additional,
                glue,
                dns.rdataclass.IN,
                dns.rdatatype.from_text(kind),
                create=True,
            )
            rrset.add(dns.rdata.from_text("IN", kind, text), 600)
    if rnd.random() < 0.1:
        response.use_edns(0)
    data = bytearray(response.to_wire())
    for _ in range(rnd.choice([0, 0, 0, 1, 2])):  # damage
        how = rnd.random()
        if how < 0.4 and data:
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        elif how < 0.7 and data:
            del data[rnd.randrange(len(data)) :]
        else:
            data += bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 4)))
    return bytes(data)


def test_what_wire_reads_dnspython_reads_the_same() -> None:
    rnd = random.Random(5)
    resolver = CachingResolver("127.0.0.1:9")
    read = 0
    for case in range(4000):
        name = rnd.choice(["short.test", "Mixed.Case.test", "2.0.2.192.zen.test"])
        rdtype = rnd.choice(["A", "TXT", "MX"])
        question = wire.question(name, rdtype)
        assert question is not None
        ident = rnd.randrange(65536)
        query = as_message(ident, question)
        data = _response(rnd, query, rdtype)
        if rnd.random() < 0.05:
            ident ^= 1  # a response to another query
        parsed = wire.parse(data, ident, question)
        if parsed is None:
            continue
        read += 1
        response = dns.message.from_wire(data)  # must not raise
        asked = as_message(ident, question)
        assert asked.is_response(response), case
        assert resolver._read(parsed) == resolver._interpret(asked, response, rdtype), case
    assert read > 500  # the plain shapes (a fifth of these) take the fast path


@pytest.mark.parametrize(
    ("label", "data"),
    [
        ("empty", b""),
        ("header only", b"\x00\x01\x81\x80" + b"\x00" * 8),
        ("a query, not a response", wire.query(1, wire.question("a.test", "A") or b"")),
    ],
)
def test_malformed_or_foreign_datagrams_are_not_read(label: str, data: bytes) -> None:
    assert wire.parse(data, 1, wire.question("a.test", "A") or b"") is None, label
