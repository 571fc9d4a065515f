"""Client networks and network sets used by the screening checks."""

from __future__ import annotations

import pytest

from mailmoat.checks._addr import NetworkSet, client_net


@pytest.mark.parametrize(
    ("ip", "net"),
    [
        ("192.0.2.77", "192.0.2.0/24"),
        ("::ffff:192.0.2.77", "192.0.2.0/24"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("not-an-ip", "not-an-ip"),
    ],
)
def test_client_net(ip: str, net: str) -> None:
    assert client_net(ip) == net


def test_network_set() -> None:
    nets = NetworkSet(["127.0.0.0/8", "::1/128", "2001:db8::/32"])
    assert "127.9.9.9" in nets and "::1" in nets and "::ffff:127.0.0.1" in nets
    assert "2001:db8:ffff::1" in nets
    assert "128.0.0.1" not in nets and "::2" not in nets and "junk" not in nets
    assert not NetworkSet() and "127.0.0.1" not in NetworkSet()
    with pytest.raises(ValueError):
        NetworkSet(["300.0.0.0/8"])
