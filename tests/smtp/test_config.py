"""The [smtp] configuration section: defaults, TOML keys, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from twisted_mail_stack.config import SenderRule, SMTPConfig, load_config
from twisted_mail_stack.errors import ConfigError
from twisted_mail_stack.smtp._data import BareLinePolicy


def test_safe_defaults() -> None:
    smtp = load_config().smtp
    assert smtp == SMTPConfig()
    assert smtp.max_message_size == 25 * 1024 * 1024
    assert smtp.max_recipients == 100
    assert smtp.max_line_length >= 512
    assert smtp.command_timeout >= 300
    assert smtp.trusted_networks == ()
    assert smtp.submission_senders is SenderRule.OWN
    assert smtp.bare_line_ends is BareLinePolicy.REJECT


def test_every_key_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        """
[smtp]
max_message_size = 1048576
max_recipients = 10
max_line_length = 1000
max_body_line_length = 0
max_errors = 5
command_timeout = 60
data_timeout = 120.5
max_connections = 10
max_connections_per_ip = 2
trusted_networks = ["192.0.2.0/24", "2001:db8::/32"]
submission_senders = "any"
bare_line_ends = "normalise"
auth_failure_delay = 0
max_auth_failures = 1
max_auth_failures_per_ip = 3
"""
    )
    smtp = load_config(path).smtp
    assert smtp == SMTPConfig(
        max_message_size=1048576,
        max_recipients=10,
        max_line_length=1000,
        max_body_line_length=0,
        max_errors=5,
        command_timeout=60.0,
        data_timeout=120.5,
        max_connections=10,
        max_connections_per_ip=2,
        trusted_networks=("192.0.2.0/24", "2001:db8::/32"),
        submission_senders=SenderRule.ANY,
        bare_line_ends=BareLinePolicy.NORMALISE,
        auth_failure_delay=0.0,
        max_auth_failures=1,
        max_auth_failures_per_ip=3,
    )


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("smtp.max_line_length", 100, "smtp.max_line_length: must be at least 512"),
        ("smtp.max_recipients", 0, "smtp.max_recipients: must be at least 1"),
        ("smtp.command_timeout", 0, "smtp.command_timeout: must be greater than 0"),
        ("smtp.auth_failure_delay", -1, "smtp.auth_failure_delay: must not be negative"),
        ("smtp.trusted_networks", ["10.0.0.0/33"], "smtp.trusted_networks[0]:"),
        ("smtp.bare_line_ends", "ignore", "smtp.bare_line_ends: must be one of reject, normalise"),
        ("smtp.submission_senders", "all", "smtp.submission_senders: must be one of own, any"),
        ("smtp.max_errors", "5", "smtp.max_errors: must be int, not str"),
        ("smtp.vrfy", True, "smtp.vrfy: unknown key"),
    ],
)
def test_errors_name_the_key(key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(overrides={key: value})
    assert str(e.value).startswith(message)
