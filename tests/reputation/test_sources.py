"""Source keys of a client address and the admin's prefix and contact tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailmoat.reputation.sources import PrefixTable, Source, Sources, TableError, protected_networks
from mailmoat.reputation.tables import ContactTable
from reputation_support import PREFIXES


def test_address_network_and_as_of_a_client() -> None:
    sources = Sources(PrefixTable.load(PREFIXES))
    assert sources.of("198.51.100.7") == (
        Source("ip", "198.51.100.7"),
        Source("net", "198.51.100.0/24"),
        Source("as", "AS64500"),
    )
    assert sources.table.names["AS64500"] == "Storm Hosting"


def test_ipv6_uses_the_64_and_the_longest_prefix() -> None:
    sources = Sources(PrefixTable.load(PREFIXES))
    found = sources.of("2001:db8:1::25")
    assert found[1] == Source("net", "2001:db8:1::/64")
    assert found[2] == Source("as", "AS64511")
    assert sources.of("2001:db8:2::1")[2] == Source("as", "AS64510")


def test_unknown_address_has_no_as_and_garbage_has_no_source() -> None:
    sources = Sources(PrefixTable.load(PREFIXES), ipv4_prefix=16)
    assert sources.of("192.0.2.1") == (Source("ip", "192.0.2.1"), Source("net", "192.0.0.0/16"))
    assert sources.of("not an address") == ()
    assert sources.of("") == ()


@pytest.mark.parametrize(
    "line", ["198.51.100.0/33,1,x", "198.51.100.0/24,notanumber,x", "198.51.100.0/24", "x,1,y"]
)
def test_a_bad_prefix_line_names_file_and_line(tmp_path: Path, line: str) -> None:
    path = tmp_path / "table.csv"
    path.write_text(f"# header\n203.0.113.0/24,64501,ok\n{line}\n")
    with pytest.raises(TableError, match=rf"{path}:3: bad prefix table line"):
        PrefixTable.load(path)


def test_contact_table_most_specific_network_then_as(tmp_path: Path) -> None:
    path = tmp_path / "contacts"
    path.write_text(
        "# abuse contacts\n198.51.100.0/24 abuse@storm.example\n"
        "198.51.100.128/25 noc@storm.example\nAS64501 abuse@clean.example\n"
    )
    table = ContactTable.load(path)
    assert table.contact_for("198.51.100.200") == "noc@storm.example"
    assert table.contact_for("198.51.100.7") == "abuse@storm.example"
    assert table.contact_for("192.0.2.1", "AS64501") == "abuse@clean.example"
    assert table.contact_for("192.0.2.1", "AS9") is None


@pytest.mark.parametrize(
    "line",
    ["198.51.100.0/24", "198.51.100.0/24 not-an-address", "ASX abuse@x.example", "a b c"],
)
def test_a_bad_contact_line_names_file_and_line(tmp_path: Path, line: str) -> None:
    path = tmp_path / "contacts"
    path.write_text(f"AS1 abuse@one.example\n\n{line}\n")
    with pytest.raises(TableError, match=rf"{path}:3: bad contact table line"):
        ContactTable.load(path)


def test_protected_networks_take_allow_list_addresses_only(tmp_path: Path) -> None:
    listed = tmp_path / "allow"
    listed.write_text("192.0.2.0/28 # partner\nfrom:friend@example.org\n")
    protected = protected_networks(
        ["127.0.0.0/8"], ["helo:mx.example.org", "203.0.113.5"], [str(listed)]
    )
    assert "127.1.2.3" in protected and "203.0.113.5" in protected and "192.0.2.9" in protected
    assert "198.51.100.7" not in protected and "203.0.113.6" not in protected
