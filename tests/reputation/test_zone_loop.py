"""Closing the loop: a storm refused by one gateway is exported as a zone,
served by rbldnsd, and a second gateway refuses the source at RCPT through
its own [dnsbl] check."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cluster.nodes import MAILMOAT, Node, send
from reputation_support import PREFIXES
from servers import Rbldnsd

pytestmark = pytest.mark.integration

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
STORM = [f"127.77.0.{n}" for n in (5, 6)]


class ListeningNode(Node):
    """A node whose [dnsbl] check is on (the others keep theirs off),
    asking the rbldnsd on loopback port ``dns_port``."""

    dns_port = 9

    def config_text(self) -> str:
        text = super().config_text().replace("[checks.dnsbl]\nenabled = false\n", "")
        return text.replace(
            'nameserver = "127.0.0.1:9"', f'nameserver = "127.0.0.1:{self.dns_port}"'
        )


def export(node: Node, output: Path) -> str:
    done = subprocess.run(
        [MAILMOAT, "zone", "export", "--config", str(node.workdir / "mailmoat.toml"),
         "--format", "rbldnsd", "--output", str(output)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return done.stdout


def test_exported_zone_makes_a_second_gateway_refuse_the_source(
    tmp_path: Path, rbldnsd_factory: Callable[..., Rbldnsd]
) -> None:
    first = Node(
        "gw1",
        tmp_path,
        f"sqlite:///{tmp_path / 'gw1.db'}",
        extra=f"""
[reputation]
own_networks = ["127.0.0.1/32"]
prefix_table = "{PREFIXES}"
flush_interval = 0.2
[zone]
name = "bl.mailmoat.test"
min_bad = 4
""",
    ).start()
    try:
        for n in range(8):
            code, text, stage = send(
                first.port, body=f"{GTUBE}\r\nmessage {n}", source=STORM[n % 2]
            )
            assert (code, stage) == (554, "data"), text
        zone = tmp_path / "bl.mailmoat.test.rbldnsd"
        deadline = time.monotonic() + 15
        while "0 entries" in (said := export(first, zone)) and time.monotonic() < deadline:
            time.sleep(0.3)
    finally:
        first.stop()
    text = zone.read_text()
    assert "3 entries" in said, text  # two addresses and their /24
    assert "\n127.77.0.0/24 :127.0.0.2:" in text and "\n127.77.0.5 :127.0.0.2:" in text

    rbl = rbldnsd_factory({"bl.mailmoat.test": ("combined", text)})
    second = ListeningNode(
        "gw2",
        tmp_path,
        f"sqlite:///{tmp_path / 'gw2.db'}",
        extra="""
[dnsbl]
sites = ["MAILMOAT:bl.mailmoat.test=127.0.0.2*5"]
threshold = 3
""",
    )
    second.dns_port = rbl.port
    second.start()
    try:
        code, text, stage = send(second.port, source="127.77.0.9")  # listed as a network
        assert (code, stage) == (554, "rcpt"), text
        assert "bl.mailmoat.test" in text
        code, text, stage = send(second.port, source="127.88.0.1")  # not listed
        assert (code, stage) == (250, "data"), text
    finally:
        second.stop()
