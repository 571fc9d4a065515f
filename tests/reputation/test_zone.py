"""``mailmoat zone export``: who is listed, the two formats, the atomic write."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from fakes import FakeClock
from mailmoat import cli
from mailmoat.config import Config, DnsConfig, ListsConfig, ZoneConfig
from mailmoat.dns import resolver_from_config
from mailmoat.reputation.recorder import ReputationRecorder
from mailmoat.reputation.zone import listings, render_bind, render_rbldnsd, write_atomically
from mailmoat.store.sqlite import SqliteStore
from reputation_support import record, reputation_config
from servers import Nsd, ipv6_dnsbl_name

NOW = 1_800_000_000.0


async def stored(config: Config, clock: FakeClock, path: Path | str = ":memory:") -> SqliteStore:
    store = SqliteStore(path, clock=clock)
    recorder = ReputationRecorder(store, config)
    for n in range(40):  # a storm from 198.51.100.0/24, mostly from .7
        recorder(record("198.51.100.7" if n % 4 else f"198.51.100.{n}", "reject", "score", NOW))
    for _ in range(30):
        recorder(record("203.0.113.5", "accept", "delivered", NOW))
    for _ in range(25):  # spam, but also much clean mail: under bad_share
        recorder(record("203.0.113.9", "quarantine", "score", NOW))
        recorder(record("203.0.113.9", "accept", "delivered", NOW))
    for _ in range(25):
        recorder(record("2001:db8:1::25", "reject", "dnsbl", NOW))
        recorder(record("192.0.2.66", "reject", "dnsbl", NOW))  # zone.allow below
    await recorder.flush()
    return store


def zone_config(**zone: object) -> Config:
    base = reputation_config()
    settings = ZoneConfig(name="bl.mailmoat.test", min_bad=20, allow=("192.0.2.64/26",))
    return dataclasses.replace(base, zone=dataclasses.replace(settings, **zone))  # type: ignore[arg-type]


async def test_the_worst_sources_are_listed_and_allowed_ones_never() -> None:
    clock = FakeClock(NOW)
    config = zone_config()
    store = await stored(config, clock)
    found = await listings(config, store, NOW)
    assert [item.source.key for item in found] == [
        "net:198.51.100.0/24",
        "ip:198.51.100.7",
        "ip:2001:db8:1::25",
        "net:2001:db8:1::/64",
    ]
    # A network holding an allow-listed address is not listed either.
    allowed = dataclasses.replace(config, lists=ListsConfig(allow=("198.51.100.200",)))
    keys = [item.source.key for item in await listings(allowed, store, NOW)]
    assert "net:198.51.100.0/24" not in keys and "ip:198.51.100.7" in keys
    only_addresses = zone_config(networks=False)
    assert [i.source.kind for i in await listings(only_addresses, store, NOW)] == ["ip", "ip"]


async def test_listings_expire_after_the_last_bad_message() -> None:
    clock = FakeClock(NOW)
    config = zone_config(expiry=6 * 3600, min_bad=1)
    store = await stored(config, clock)
    assert await listings(config, store, NOW + 3 * 3600)
    assert await listings(config, store, NOW + 8 * 3600) == []


async def test_rbldnsd_and_bind_formats() -> None:
    clock = FakeClock(NOW)
    config = zone_config()
    found = await listings(config, await stored(config, clock), NOW)
    rbldnsd = render_rbldnsd(config, found, NOW).splitlines()
    assert rbldnsd[1] == "$TTL 3600"
    assert rbldnsd[2] == "$DATASET ip4set @"
    assert rbldnsd[3].startswith("198.51.100.0/24 :127.0.0.2:Listed by mailmoat: 40 of 40")
    assert rbldnsd[4].endswith("https://mailmoat.invalid/lookup?ip=198.51.100.7")
    assert rbldnsd[5] == "$DATASET ip6trie @"
    assert rbldnsd[6].startswith("2001:db8:1::25 :127.0.0.2:")
    bind = render_bind(config, found, NOW)
    assert "$ORIGIN bl.mailmoat.test.\n" in bind and "@ IN SOA ns.bl.mailmoat.test." in bind
    assert "*.100.51.198 IN A 127.0.0.2\n" in bind
    assert "7.100.51.198 IN A 127.0.0.2\n" in bind
    assert '7.100.51.198 IN TXT "Listed by mailmoat: 30 of 30 recent' in bind
    nibbles = ipv6_dnsbl_name("2001:db8:1::25", "x").removesuffix(".x")
    assert f"\n{nibbles} IN A 127.0.0.2\n" in bind
    assert f"\n*.{nibbles[32:]} IN A 127.0.0.2\n" in bind  # the /64: its 16 first nibbles


def test_the_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "zone"
    write_atomically(target, "old\n")
    before = target.stat().st_ino

    def crash(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        write_atomically(target, "new and half")
    monkeypatch.undo()
    assert target.read_text() == "old\n" and os.listdir(tmp_path) == ["zone"]
    write_atomically(target, "new\n")
    assert target.read_text() == "new\n" and target.stat().st_ino != before
    assert oct(target.stat().st_mode & 0o777) == "0o644"


def test_the_command_writes_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio
    import time

    from gateway_harness import toml_dumps

    clock = FakeClock(time.time())
    config_path = tmp_path / "mailmoat.toml"
    config_path.write_text(
        toml_dumps(
            {
                "store": {"url": f"sqlite:///{tmp_path / 'store.db'}"},
                "zone": {"name": "bl.mailmoat.test", "min_bad": 5},
            }
        )
    )
    config = dataclasses.replace(zone_config(min_bad=5))

    async def fill() -> None:
        store = SqliteStore(tmp_path / "store.db", clock=clock)
        recorder = ReputationRecorder(store, config)
        for _ in range(10):
            recorder(record("198.51.100.7", "reject", "score", clock()))
        await recorder.flush()
        await store.close()

    asyncio.run(fill())
    out = tmp_path / "zone.bind"
    assert (
        cli.main(
            [
                "zone",
                "export",
                "--config",
                str(config_path),
                "--format",
                "bind",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    assert "2 entries (bind)" in capsys.readouterr().out
    assert "7.100.51.198 IN A 127.0.0.2" in out.read_text()
    bad = ["zone", "export", "--config", str(config_path), "--output", str(tmp_path / "no" / "dir")]
    assert cli.main(bad) == 1


@pytest.mark.integration
async def test_the_bind_export_served_by_nsd(nsd_factory: Callable[..., Nsd]) -> None:
    clock = FakeClock(NOW)
    config = zone_config()
    found = await listings(config, await stored(config, clock), NOW)
    nsd = nsd_factory({"bl.mailmoat.test": render_bind(config, found, NOW)})
    resolver = resolver_from_config(DnsConfig(nameserver=f"127.0.0.1:{nsd.port}", timeout=2))
    listed = await resolver.resolve("7.100.51.198.bl.mailmoat.test", "A")
    assert listed.records == ("127.0.0.2",)
    txt = await resolver.resolve("7.100.51.198.bl.mailmoat.test", "TXT")
    assert txt.records and "30 of 30" in txt.records[0] and "ip=198.51.100.7" in txt.records[0]
    neighbour = await resolver.resolve("200.100.51.198.bl.mailmoat.test", "A")  # the /24 wildcard
    assert neighbour.records == ("127.0.0.2",)
    v6 = await resolver.resolve(ipv6_dnsbl_name("2001:db8:1::25", "bl.mailmoat.test"), "A")
    assert v6.records == ("127.0.0.2",)
    clean = await resolver.resolve("5.113.0.203.bl.mailmoat.test", "A")
    assert clean.status == "nxdomain" and not clean.records
