"""Relay control: only plain mailboxes in our domains pass, every trick fails."""

import pytest

from mailmoat.core.relay import AddressError, parse_path, relay_allowed

DOMAINS = ("example.org", ".sub.example.net")


@pytest.mark.parametrize(
    ("label", "address"),
    [
        ("plain", "user@example.org"),
        ("case", "User@EXAMPLE.ORG"),
        ("one trailing dot", "user@example.org."),
        ("subdomain entry", "user@a.sub.example.net"),
        ("postmaster", "postmaster"),
        ("quoted harmless", '"john smith"@example.org'),
    ],
)
def test_allowed(label: str, address: str) -> None:
    assert relay_allowed(address, DOMAINS), label


@pytest.mark.parametrize(
    ("label", "address"),
    [
        ("foreign", "user@evil.com"),
        ("percent hack", "user%evil.com@example.org"),
        ("bang path", "evil.com!user@example.org"),
        ("source route", "@example.org:user@evil.com"),
        ("source route to ours", "@evil.com:user@example.org"),
        ("quoted at", '"user@evil.com"@example.org'),
        ("quoted percent", '"user%evil.com"@example.org'),
        ("two trailing dots", "user@example.org.."),
        ("foreign with trailing dot", "user@evil.com."),
        ("suffix lookalike", "user@evilexample.org"),
        ("prefix lookalike", "user@example.org.evil.com"),
        ("address literal", "user@[127.0.0.1]"),
        ("parent of subdomain entry", "user@sub.example.net"),
        ("no domain", "user"),
        ("double at", "user@evil.com@example.org"),
    ],
)
def test_denied(label: str, address: str) -> None:
    assert not relay_allowed(address, DOMAINS), label


def test_parse_path_accepts_null_sender_only_when_allowed() -> None:
    assert parse_path("<>", allow_null=True) == ""
    with pytest.raises(AddressError):
        parse_path("<>")


@pytest.mark.parametrize(
    "path",
    ["user@example.org", "<user@example.org", "<us er@example.org>", "<a@b\x00c>", "<@>", "<a@>"],
)
def test_parse_path_rejects_bad_syntax(path: str) -> None:
    with pytest.raises(AddressError):
        parse_path(path)
