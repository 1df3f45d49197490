"""Configuration: defaults, TOML reading, overrides, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from twisted_mail_stack.auth.policy import PlaintextPolicy
from twisted_mail_stack.config import Backend, Config, load_config
from twisted_mail_stack.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mailstack.toml"
    path.write_text(text)
    return path


def test_defaults_need_no_file() -> None:
    config = load_config()
    assert config == Config()
    assert config.data_dir == "./mailstack-data"
    assert config.domains == ("localhost",)
    assert config.store.backend is Backend.MAILDIR
    assert config.listeners.smtp == ("tcp:2525:interface=127.0.0.1",)
    assert config.listeners.imaps == ("tcp:2993:interface=127.0.0.1",)
    assert config.auth.plaintext is PlaintextPolicy.TLS_OR_LOOPBACK


def test_full_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
data_dir = "/srv/mail"
hostname = "mx.example.org"
domains = ["Example.ORG.", "bücher.example"]

[store]
backend = "memory"
poll_interval = 2

[listeners]
smtp = ["tcp:25", "tcp6:25"]
imap = []

[tls]
cert = "/etc/ssl/c.pem"
key = "/etc/ssl/k.pem"

[auth]
plaintext = "tls-only"
postmaster = "root@example.org"
""",
    )
    config = load_config(path)
    assert config.data_dir == "/srv/mail"
    assert config.domains == ("example.org", "xn--bcher-kva.example")
    assert config.store.backend is Backend.MEMORY
    assert config.store.poll_interval == 2.0
    assert config.listeners.smtp == ("tcp:25", "tcp6:25")
    assert config.listeners.imap == ()
    assert config.listeners.pop3 == ("tcp:2110:interface=127.0.0.1",)
    assert config.tls.cert == "/etc/ssl/c.pem"
    assert config.auth.plaintext is PlaintextPolicy.TLS_ONLY


def test_overrides_win_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'data_dir = "a"\n[listeners]\nsmtp = ["tcp:25"]\n')
    config = load_config(
        path, {"data_dir": "b", "listeners.smtp": ["tcp:2626"], "domains": ["x.org"]}
    )
    assert config.data_dir == "b"
    assert config.listeners.smtp == ("tcp:2626",)
    assert config.domains == ("x.org",)


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ('data_dirr = "x"', "data_dirr", "unknown key"),
        ("[store]\nbackend = 'mysql'", "store.backend", "must be one of maildir, memory"),
        ("[store]\ncolour = 1", "store.colour", "unknown key"),
        ("[nonsense]\na = 1", "nonsense", "unknown key"),
        ("domains = 'a'\nhostname = 3", "hostname", "must be str, not int"),
        ("[store]\npoll_interval = 'fast'", "store.poll_interval", "must be float"),
        ("[store]\npoll_interval = 0", "store.poll_interval", "greater than 0"),
        ("domains = []", "domains", "at least one"),
        ("domains = [1]", "domains[0]", "must be str"),
        ("store = 3", "store", "must be a table"),
        ("[listeners]\nsmtp = ['tcp:notaport']", "listeners.smtp[0]", "bad endpoint"),
        ("[listeners]\nimap = ['warp:1']", "listeners.imap[0]", "bad endpoint"),
        ("[tls]\ncert = '/x.pem'", "tls", "both cert and key"),
        ("[auth]\nplaintext = 'sometimes'", "auth.plaintext", "tls-or-loopback"),
        ("[auth]\npostmaster = 'nobody'", "auth.postmaster", "not an address"),
        ("users = ['a@localhost']", "users[0]", "ADDRESS:PASSWORD"),
        ("users = ['a@elsewhere.org:pw']", "users[0]", "not one of the local domains"),
        ("hostname = 'a b'", "hostname", "host name"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert info.value.key == key
    assert problem in info.value.problem
    assert str(info.value).startswith(key + ":")


def test_not_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "data_dir = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def test_config_is_frozen() -> None:
    config = load_config()
    with pytest.raises(AttributeError):
        config.data_dir = "x"  # type: ignore[misc]
