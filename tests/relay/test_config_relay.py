"""The [relay] section: defaults like Postfix's, routes and policies read from TOML, errors by key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from twisted_mail_stack.config import load_config, parse_hostport
from twisted_mail_stack.errors import ConfigError
from twisted_mail_stack.relay.mx import Relay
from twisted_mail_stack.relay.wiring import Sender, policy_from_config, routes_from_config
from twisted_mail_stack.values import MXHost


def test_defaults_are_postfix_like() -> None:
    config = load_config()
    policy = policy_from_config(config)
    assert (policy.minimal_backoff, policy.maximal_backoff) == (300.0, 4000.0)
    assert policy.maximal_lifetime == policy.bounce_lifetime == 5 * 86400.0
    assert policy.delay_warning is None
    routes = routes_from_config(config)
    assert routes.smarthost is None and dict(routes.transports) == {}


def test_routes_and_schedule_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        "[relay]\n"
        'smarthost = "smtp.provider.test:587"\n'
        'smarthost_user = "me"\nsmarthost_password = "pw"\n'
        'transports = ["Partner.Example=10.0.0.5:2525", "v6.test=[2001:db8::1]"]\n'
        'tls_required_domains = ["bank.test"]\n'
        "first_retry = 60\nmax_retry = 600\nlifetime = 86400\ndelay_warning = 14400\n"
        'nameservers = ["127.0.0.1"]\ndns_port = 5353\n'
    )
    config = load_config(path)
    routes = routes_from_config(config)
    assert routes.smarthost == Relay("smtp.provider.test", 587)
    assert dict(routes.transports) == {
        "partner.example": Relay("10.0.0.5", 2525),
        "v6.test": Relay("2001:db8::1", 25),
    }
    policy = policy_from_config(config)
    assert (policy.minimal_backoff, policy.maximal_backoff) == (60.0, 600.0)
    assert (policy.maximal_lifetime, policy.delay_warning) == (86400.0, 14400.0)
    assert config.relay.nameservers == ("127.0.0.1",) and config.relay.dns_port == 5353


def test_sender_policy_per_route(monkeypatch: pytest.MonkeyPatch) -> None:
    from twisted_mail_stack.relay.client import Outgoing
    from twisted_mail_stack.sources import BytesSource
    from twisted_mail_stack.values import Envelope, EnvelopeRecipient

    calls: list[tuple[str, int, dict[str, Any]]] = []

    def deliver(address: str, port: int, messages: Any, **kw: Any) -> None:
        calls.append((address, port, kw))

    config = load_config(
        overrides={
            "relay.smarthost": "relay.test:587",
            "relay.smarthost_user": "me",
            "relay.smarthost_password": "pw",
            "relay.tls_required_domains": ["Bank.Test"],
        }
    )
    send = Sender(config, None)
    monkeypatch.setattr(send.pool, "deliver", deliver)

    def to(rcpt: str) -> list[Outgoing]:
        return [Outgoing(Envelope("a@x.test", (EnvelopeRecipient(rcpt),)), BytesSource(b""))]

    send(MXHost("relay.test", ("192.0.2.1",), 587), "192.0.2.1", to("x@any.test"))
    send(MXHost("mx.bank.test", ("192.0.2.2",), 25), "192.0.2.2", to("x@bank.test"))
    send(MXHost("mx.other.test", ("192.0.2.3",), 25), "192.0.2.3", to("x@other.test"))
    assert [(a, p, kw["auth"], kw["tls_required"]) for a, p, kw in calls] == [
        ("192.0.2.1", 587, ("me", "pw"), False),  # AUTH itself makes the client require TLS
        ("192.0.2.2", 25, None, True),
        ("192.0.2.3", 25, None, False),
    ]
    assert send.pool.helo_name == "localhost" and send.pool.tls_options is not None


def test_outbound_timeouts(tmp_path: Path) -> None:
    from twisted_mail_stack.relay.client import Timeouts

    # RFC 5321 4.5.3.2's minimums by default.
    assert Sender(load_config(), None).pool.timeouts == Timeouts(30.0, 300.0, 300.0, 120.0, 600.0)
    path = tmp_path / "c.toml"
    path.write_text(
        "[relay]\nconnect_timeout = 5\ngreeting_timeout = 60\ncommand_timeout = 61\n"
        "data_timeout = 62\ndata_end_timeout = 63.5\n"
    )
    timeouts = Sender(load_config(path), None).pool.timeouts
    assert timeouts == Timeouts(
        connect=5.0, greeting=60.0, command=61.0, data_start=62.0, data_end=63.5
    )


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"relay.smarthost": "a b:25"}, "relay.smarthost"),
        ({"relay.smarthost": "host:99999"}, "relay.smarthost"),
        ({"relay.smarthost": "h", "relay.smarthost_user": "u"}, "relay.smarthost_user"),
        ({"relay.smarthost_user": "u", "relay.smarthost_password": "p"}, "relay.smarthost_user"),
        ({"relay.transports": ["no-equals-sign"]}, "relay.transports[0]"),
        ({"relay.transports": ["ok.test=h:25", "x=h:0"]}, "relay.transports[1]"),
        ({"relay.nameservers": ["dns.example"]}, "relay.nameservers[0]"),
        ({"relay.first_retry": 0}, "relay.first_retry"),
        ({"relay.data_end_timeout": 0}, "relay.data_end_timeout"),
        ({"relay.connect_timeout": -5}, "relay.connect_timeout"),
        ({"relay.first_retry": 500, "relay.max_retry": 400}, "relay.max_retry"),
        ({"relay.delay_warning": -1}, "relay.delay_warning"),
        ({"relay.dns_port": 0}, "relay.dns_port"),
        ({"relay.max_connections_per_destination": 0}, "relay.max_connections_per_destination"),
        ({"relay.lifetme": 1}, "relay.lifetme"),
    ],
)
def test_errors_name_the_key(overrides: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(overrides=overrides)
    assert e.value.key == key


def test_parse_hostport() -> None:
    assert parse_hostport("h") == ("h", 25)
    assert parse_hostport("h:2525") == ("h", 2525)
    assert parse_hostport("[::1]:26") == ("::1", 26)
    assert parse_hostport("[::1]") == ("::1", 25)
    assert parse_hostport("2001:db8::1") == ("2001:db8::1", 25)  # bare IPv6: no port
    for bad in ("", ":25", "[::1", "[::1]x", "h:x", "h:0"):
        with pytest.raises(ValueError):
            parse_hostport(bad)
