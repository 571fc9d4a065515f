"""Config loading: defaults, overrides, and clear errors naming the key."""

from pathlib import Path

import pytest

from mailmoat.config import Config, ConfigError, load_config, parse_hostport


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mailmoat.toml"
    path.write_text(text)
    return path


def test_embedded_defaults() -> None:
    config = load_config(None)
    assert config == Config()
    assert config.smtp.listen == "127.0.0.1:2525"
    assert config.relay.domains == ("localhost",)
    assert config.relay.upstream == ""
    assert config.delivery.maildir == "var/maildir"


def test_overrides_and_nested_tables(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
[smtp]
listen = "127.0.0.1:2626"
max_message_size = 1000
[relay]
domains = ["example.org"]
upstream = "127.0.0.1:10025"
[actions]
reject = 12
[scores]
HELO_NOT_FQDN = 3
[checks.helo]
timeout = 2
fail_mode = "tempfail"
""",
        )
    )
    assert config.smtp.max_message_size == 1000
    assert config.relay.domains == ("example.org",)
    assert config.actions.reject == 12.0
    assert config.scores == {"HELO_NOT_FQDN": 3.0}
    assert config.check("helo").fail_mode == "tempfail"
    assert config.check("other").timeout == 10.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[smtp]\nlisten = 25\n", "smtp.listen must be a string"),
        ("[smtp]\nlistne = 'x'\n", "unknown key smtp.listne"),
        ("[nosuch]\na = 1\n", "unknown key nosuch"),
        ("[smtp]\nmax_message_size = 'big'\n", "smtp.max_message_size must be an integer"),
        ("[smtp]\nbare_newline = 'maybe'\n", "smtp.bare_newline: must be one of"),
        ("[relay]\nupstream = 'host:99999'\n", "bad port"),
        ("[checks.helo]\nfail_mode = 'explode'\n", "checks.helo.fail_mode"),
        ("[smtp\n", "not valid TOML"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_config(write(tmp_path, text))


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml")


def test_parse_hostport() -> None:
    assert parse_hostport("127.0.0.1:25") == ("127.0.0.1", 25)
    assert parse_hostport("[::1]:2525") == ("::1", 2525)
    assert parse_hostport("mx.example.org") == ("mx.example.org", 25)
    with pytest.raises(ConfigError):
        parse_hostport(":25")
