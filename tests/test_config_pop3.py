"""The [pop3] section of the configuration."""

from __future__ import annotations

import pytest

from twisted_mail_stack.config import POP3Config, load_config
from twisted_mail_stack.errors import ConfigError


def test_defaults() -> None:
    config = load_config().pop3
    assert config == POP3Config()
    assert config.idle_timeout >= 600  # RFC 1939 3


def test_values_from_toml(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "c.toml"
    path.write_text("[pop3]\nidle_timeout = 900\nmax_connections_per_client = 5\n")
    config = load_config(path).pop3
    assert (config.idle_timeout, config.max_connections_per_client) == (900.0, 5)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("pop3.max_line_length", 100, "pop3.max_line_length: must be at least 255"),
        ("pop3.idle_timeout", 0, "pop3.idle_timeout: must be greater than 0"),
        ("pop3.login_failure_delay", -1.0, "pop3.login_failure_delay: must not be negative"),
        ("pop3.max_errors", 0, "pop3.max_errors: must be at least 1"),
        ("pop3.max_errors", "many", "pop3.max_errors: must be int"),
        ("pop3.bogus", 1, "pop3.bogus: unknown key"),
    ],
)
def test_errors_name_the_key(key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(overrides={key: value})
    assert str(e.value).startswith(message)
