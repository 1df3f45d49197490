"""
Configuration: a TOML file read once into frozen attrs values.

Each section is an attrs class; L{load_config} walks the class's fields, so a new setting is one
field with a default. Every error is a L{ConfigError} that names the dotted key; unknown keys are
errors, so a typo never passes silently.
"""

from __future__ import annotations

import enum
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, Union

import attrs
from attrs import field, frozen

from .auth.policy import PlaintextPolicy
from .errors import ConfigError
from .smtp._data import BareLinePolicy
from .values import Address, normalise_domain


def _endpoint(port: int) -> tuple[str, ...]:
    return (f"tcp:{port}:interface=127.0.0.1",)


@frozen
class Listeners:
    """
    Twisted server endpoint strings per protocol (see C{twisted.internet.endpoints.serverFromString}).

    The implicit-TLS kinds (C{submissions}, C{pop3s}, C{imaps}) wrap whatever endpoint is given in
    the server's TLS settings. Defaults: loopback, unprivileged ports.
    """

    smtp: tuple[str, ...] = _endpoint(2525)
    submission: tuple[str, ...] = _endpoint(2587)
    submissions: tuple[str, ...] = _endpoint(2465)
    pop3: tuple[str, ...] = _endpoint(2110)
    pop3s: tuple[str, ...] = _endpoint(2995)
    imap: tuple[str, ...] = _endpoint(2143)
    imaps: tuple[str, ...] = _endpoint(2993)


class Backend(enum.Enum):
    MAILDIR = "maildir"
    MEMORY = "memory"


@frozen
class StoreConfig:
    """Which mailbox backend holds the mail."""

    #: C{maildir} (on disk under C{data_dir/mail}) or C{memory} (lost at exit: for tests).
    backend: Backend = Backend.MAILDIR
    #: Seconds between looks for changes made by other processes while a session listens.
    poll_interval: float = 1.0


@frozen
class TLSConfig:
    """Certificate and key (PEM). With neither, a self-signed pair is made in C{data_dir/tls}."""

    cert: str | None = None
    key: str | None = None


@frozen
class AuthConfig:
    """Authentication settings shared by every protocol."""

    #: When cleartext passwords are accepted: tls-or-loopback, tls-only, always, never.
    plaintext: PlaintextPolicy = PlaintextPolicy.TLS_OR_LOOPBACK
    #: Where C{postmaster@} of every local domain goes when no alias says otherwise.
    postmaster: str | None = None
    #: Threads of the pool that checks passwords (scrypt), apart from the storage threads.
    hash_threads: int = 2
    #: Seconds a verified login is remembered (keyed by an HMAC, never the password; see
    #: L{twisted_mail_stack.auth.cache}) so the next one skips scrypt; 0: no cache.
    cache_ttl: float = 300.0
    #: Users the login cache remembers at most (least recently used go first).
    cache_size: int = 10_000


@frozen
class POP3Config:
    """POP3 limits (RFC 1939, RFC 2449)."""

    #: Longest command or SASL line in octets, CRLF included (RFC 2449 4 needs at least 255).
    max_line_length: int = 2048
    #: Seconds of client silence before a session is closed without deleting anything; RFC 1939 3
    #: asks for at least 600.
    idle_timeout: float = 600.0
    #: Bad commands one session may send before it is closed.
    max_errors: int = 20
    #: Concurrent connections from one client address.
    max_connections_per_client: int = 20
    #: Seconds a failed login waits before its -ERR.
    login_failure_delay: float = 2.0
    #: Failed logins after which a session is closed.
    max_login_failures: int = 3
    #: Failed logins from one address within C{login_failure_window} seconds after which its
    #: further logins are refused until the window has passed.
    max_client_login_failures: int = 10
    login_failure_window: float = 600.0


@frozen
class IMAPConfig:
    """IMAP limits (RFC 3501, RFC 7162 4)."""

    #: Longest command line in octets, literals excluded (RFC 7162 4 suggests at least 8192).
    max_line_length: int = 65536
    #: Largest literal (an APPENDed message), in octets; larger ones get NO/BAD [TOOBIG].
    max_literal_size: int = 64 * 1024 * 1024
    #: Seconds of client silence before autologout; RFC 3501 5.4 asks for at least 30 minutes.
    idle_timeout: float = 1800.0
    #: Bad commands one session may send before it is closed.
    max_errors: int = 20
    #: Concurrent connections from one client address (clients open several).
    max_connections_per_client: int = 50
    #: Seconds a failed login waits before its NO.
    login_failure_delay: float = 2.0
    #: Failed logins after which a session is closed.
    max_login_failures: int = 3
    #: Failed logins from one address within C{login_failure_window} seconds after which its
    #: further logins are refused until the window has passed.
    max_client_login_failures: int = 10
    login_failure_window: float = 600.0


class SenderRule(enum.Enum):
    """Which envelope senders an authenticated submission user may use."""

    #: Only addresses that deliver to the user: their own, or an alias that includes them.
    OWN = "own"
    #: Any address (for trusted users, e.g. a web application sending for many).
    ANY = "any"


@frozen
class SMTPConfig:
    """SMTP limits and rules (MX and submission alike, unless the name says otherwise)."""

    #: Largest message accepted, in bytes, with the trace headers (RFC 1870 SIZE).
    max_message_size: int = 25 * 1024 * 1024
    #: Recipients per message (RFC 5321 4.5.3.1.8: at least 100).
    max_recipients: int = 100
    #: Longest command line, in bytes with CRLF (RFC 5321 4.5.3.1.4: at least 512).
    max_line_length: int = 2048
    #: Longest line of a message body, with CRLF (RFC 5321 4.5.3.1.6: 1000); 0: no limit.
    max_body_line_length: int = 1000
    #: Errors a session may make before it is closed with 421.
    max_errors: int = 20
    #: Seconds of silence before a session is closed: waiting for a command, and inside
    #: DATA/BDAT (RFC 5321 4.5.3.2.7: at least 5 minutes).
    command_timeout: float = 300.0
    data_timeout: float = 300.0
    #: Connections at once per listener, in total and per client address.
    max_connections: int = 500
    max_connections_per_ip: int = 50
    #: Networks whose clients may relay through the MX listener without AUTH (CIDR).
    trusted_networks: tuple[str, ...] = ()
    #: Envelope senders a submission user may use: own or any.
    submission_senders: SenderRule = SenderRule.OWN
    #: A bare CR or LF in a message: reject it, or normalise it to CRLF.
    bare_line_ends: BareLinePolicy = BareLinePolicy.REJECT
    #: Seconds before a failed AUTH is answered; failures per session before 421; failures
    #: per client address within 15 minutes before AUTH is refused (454).
    auth_failure_delay: float = 2.0
    max_auth_failures: int = 3
    max_auth_failures_per_ip: int = 10


@frozen
class RelayConfig:
    """
    Outbound mail (the relay): routes, retries, limits. Routing: C{transports} (exact domain),
    then C{smarthost}, then DNS MX records (RFC 5321 5.1).
    """

    #: Send all remote mail through this host, as C{host:port} (C{[v6addr]:port} for IPv6).
    smarthost: str | None = None
    #: AUTH PLAIN credentials for the smarthost (both or neither); TLS is then required.
    smarthost_user: str | None = None
    smarthost_password: str | None = None
    #: Refuse to send to the smarthost without STARTTLS.
    smarthost_tls_required: bool = False
    #: Per-domain routes, each C{domain=host:port}; they win over the smarthost.
    transports: tuple[str, ...] = ()
    #: Domains whose mail goes out only over STARTTLS (else it stays queued).
    tls_required_domains: tuple[str, ...] = ()
    #: Retry schedule (seconds), Postfix's defaults: minimal_backoff_time, maximal_backoff_time,
    #: maximal_queue_lifetime, bounce_queue_lifetime.
    first_retry: float = 300.0
    max_retry: float = 4000.0
    lifetime: float = 5 * 86400.0
    bounce_lifetime: float = 5 * 86400.0
    #: Send an RFC 3464 "delayed" notice once a message is this old (seconds); 0: never.
    delay_warning: float = 0.0
    #: DNS servers (IP addresses) and their port; empty: those of /etc/resolv.conf.
    nameservers: tuple[str, ...] = ()
    dns_port: int = 53
    #: The port of hosts found through MX records (25; other values are for tests).
    smtp_port: int = 25
    #: Outbound connections at once, in total and per destination host.
    max_connections: int = 20
    max_connections_per_destination: int = 5
    #: Seconds an idle outbound session stays open for the next message to the same host
    #: (Postfix's smtp_connection_cache_time_limit); 0: one session per delivery.
    connection_cache_time: float = 2.0
    #: Outbound timeouts in seconds: the TCP connect, then the replies (RFC 5321 4.5.3.2's
    #: minimums: greeting 5 min; EHLO, MAIL, RCPT and the like 5 min; DATA 2 min; the end of
    #: the data 10 min).
    connect_timeout: float = 30.0
    greeting_timeout: float = 300.0
    command_timeout: float = 300.0
    data_timeout: float = 120.0
    data_end_timeout: float = 600.0
    #: Seconds between scans of the queue and between looks for operator requests.
    scan_interval: float = 300.0
    control_interval: float = 1.0


def _domains(value: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(normalise_domain(d) for d in value))


@frozen
class Config:
    """The whole configuration of one server."""

    #: Where mail, the password and alias files, the TLS pair and the queue live.
    data_dir: str = "./mailstack-data"
    #: The name the server gives itself in greetings and its self-signed certificate.
    hostname: str = "localhost"
    #: The domains whose mail is delivered here.
    domains: tuple[str, ...] = field(default=("localhost",), converter=_domains)
    store: StoreConfig = StoreConfig()
    listeners: Listeners = Listeners()
    tls: TLSConfig = TLSConfig()
    auth: AuthConfig = AuthConfig()
    pop3: POP3Config = POP3Config()
    imap: IMAPConfig = IMAPConfig()
    smtp: SMTPConfig = SMTPConfig()
    relay: RelayConfig = RelayConfig()
    #: Users to create or update at start, as C{address:password} (C{--user}; for quick starts).
    users: tuple[str, ...] = ()

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)


# -- reading -----------------------------------------------------------------------

T = TypeVar("T")


def load_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> Config:
    """
    Read C{path} (TOML) if given, apply C{overrides} (dotted keys, e.g. C{"listeners.smtp"}),
    validate, and return the L{Config}. Raise L{ConfigError} naming the key on any problem.
    """
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except OSError as e:
            raise ConfigError(str(path), f"cannot read: {e.strerror}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(str(path), f"not valid TOML: {e}") from None
    for dotted, value in (overrides or {}).items():
        *parents, leaf = dotted.split(".")
        section = data
        for name in parents:
            section = section.setdefault(name, {})
        section[leaf] = value
    config = _build(Config, data, "")
    _check(config)
    return config


def _build(cls: type[T], data: Any, prefix: str) -> T:
    if not isinstance(data, dict):
        raise ConfigError(prefix.rstrip(".") or "(top level)", "must be a table")
    hints = typing.get_type_hints(cls)
    fields = {a.name: a for a in attrs.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(prefix + unknown[0], "unknown key")
    kwargs = {}
    for name, value in data.items():
        key = prefix + name
        value = _convert(hints[name], value, key)
        converter = fields[name].converter
        if converter is not None:
            try:  # run it here too, so that its error names this key
                converter(value)
            except (ValueError, TypeError) as e:
                raise ConfigError(key, str(e)) from None
        kwargs[name] = value
    return cls(**kwargs)


def _convert(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None or value == "":
            if type(None) in args:
                return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, key)
    if attrs.has(hint):
        return _build(hint, value, key + ".")
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(key, f"must be a list, not {type(value).__name__}")
        return tuple(_convert(args[0], item, f"{key}[{i}]") for i, item in enumerate(value))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        choices = [m.value for m in hint]
        if value not in choices:
            raise ConfigError(key, f"must be one of {', '.join(map(str, choices))}, not {value!r}")
        return hint(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if hint in (str, int, float, bool) and (type(value) is not hint):
        raise ConfigError(key, f"must be {hint.__name__}, not {type(value).__name__}")
    return value


def _check(config: Config) -> None:
    """Rules that span keys."""
    if not config.domains:
        raise ConfigError("domains", "at least one local domain is needed")
    if not config.hostname or any(c.isspace() for c in config.hostname):
        raise ConfigError("hostname", "must be a host name")
    if config.store.poll_interval <= 0:
        raise ConfigError("store.poll_interval", "must be greater than 0")
    if (config.tls.cert is None) != (config.tls.key is None):
        raise ConfigError("tls", "give both cert and key, or neither")
    for i, entry in enumerate(config.users):
        address, sep, password = entry.partition(":")
        key = f"users[{i}]"
        if not sep or not password:
            raise ConfigError(key, "must be ADDRESS:PASSWORD")
        try:
            parsed = Address.parse(address)
        except ValueError as e:
            raise ConfigError(key, str(e)) from None
        if parsed.domain not in config.domains:
            raise ConfigError(key, f"domain {parsed.domain} is not one of the local domains")
    if config.auth.postmaster is not None:
        try:
            Address.parse(config.auth.postmaster)
        except ValueError as e:
            raise ConfigError("auth.postmaster", str(e)) from None
    if config.auth.hash_threads < 1:
        raise ConfigError("auth.hash_threads", "must be at least 1")
    if config.auth.cache_ttl < 0:
        raise ConfigError("auth.cache_ttl", "must not be negative")
    if config.auth.cache_size < 1:
        raise ConfigError("auth.cache_size", "must be at least 1")
    _check_pop3(config.pop3)
    _check_imap(config.imap)
    _check_smtp(config.smtp)
    _check_relay(config.relay)
    _check_listeners(config.listeners)


def _check_smtp(smtp: SMTPConfig) -> None:
    import ipaddress

    minimums = {
        "max_message_size": 1024,
        "max_recipients": 1,
        "max_line_length": 512,
        "max_body_line_length": 0,
        "max_errors": 1,
        "max_connections": 1,
        "max_connections_per_ip": 1,
        "max_auth_failures": 1,
        "max_auth_failures_per_ip": 1,
    }
    for name, minimum in minimums.items():
        if getattr(smtp, name) < minimum:
            raise ConfigError(f"smtp.{name}", f"must be at least {minimum}")
    for name in ("command_timeout", "data_timeout"):
        if getattr(smtp, name) <= 0:
            raise ConfigError(f"smtp.{name}", "must be greater than 0")
    if smtp.auth_failure_delay < 0:
        raise ConfigError("smtp.auth_failure_delay", "must not be negative")
    for i, network in enumerate(smtp.trusted_networks):
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError as e:
            raise ConfigError(f"smtp.trusted_networks[{i}]", str(e)) from None


def parse_hostport(text: str, default_port: int = 25) -> tuple[str, int]:
    """C{host}, C{host:port}, C{[v6addr]} or C{[v6addr]:port} as (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"bad host {text!r}")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not host or any(c.isspace() for c in host):
        raise ValueError(f"bad host {text!r}")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port in {text!r}")
    return host, int(port_text)


def parse_transport(text: str) -> tuple[str, tuple[str, int]]:
    """A C{transports} entry C{domain=host:port} as (domain, (host, port))."""
    domain, sep, target = text.partition("=")
    if not sep:
        raise ValueError(f"{text!r} is not domain=host:port")
    return normalise_domain(domain.strip()), parse_hostport(target)


def _check_relay(relay: RelayConfig) -> None:
    import ipaddress

    if relay.smarthost is not None:
        try:
            parse_hostport(relay.smarthost)
        except ValueError as e:
            raise ConfigError("relay.smarthost", str(e)) from None
    if (relay.smarthost_user is None) != (relay.smarthost_password is None):
        raise ConfigError("relay.smarthost_user", "give smarthost_user and _password, or neither")
    if relay.smarthost_user is not None and relay.smarthost is None:
        raise ConfigError("relay.smarthost_user", "needs a smarthost")
    for i, entry in enumerate(relay.transports):
        try:
            parse_transport(entry)
        except ValueError as e:
            raise ConfigError(f"relay.transports[{i}]", str(e)) from None
    for i, domain in enumerate(relay.tls_required_domains):
        try:
            normalise_domain(domain)
        except ValueError as e:
            raise ConfigError(f"relay.tls_required_domains[{i}]", str(e)) from None
    for i, server in enumerate(relay.nameservers):
        try:
            ipaddress.ip_address(server)
        except ValueError as e:
            raise ConfigError(f"relay.nameservers[{i}]", str(e)) from None
    for name in ("first_retry", "max_retry", "lifetime", "bounce_lifetime", "scan_interval",
                 "control_interval", "connect_timeout", "greeting_timeout", "command_timeout",
                 "data_timeout", "data_end_timeout"):  # fmt: skip
        if getattr(relay, name) <= 0:
            raise ConfigError(f"relay.{name}", "must be greater than 0")
    if relay.max_retry < relay.first_retry:
        raise ConfigError("relay.max_retry", "must not be smaller than first_retry")
    for name in ("delay_warning", "connection_cache_time"):
        if getattr(relay, name) < 0:
            raise ConfigError(f"relay.{name}", "must not be negative")
    for name in ("dns_port", "smtp_port"):
        if not 0 < getattr(relay, name) < 65536:
            raise ConfigError(f"relay.{name}", "must be a port number")
    for name in ("max_connections", "max_connections_per_destination"):
        if getattr(relay, name) < 1:
            raise ConfigError(f"relay.{name}", "must be at least 1")


def _check_pop3(pop3: POP3Config) -> None:
    if pop3.max_line_length < 255:
        raise ConfigError("pop3.max_line_length", "must be at least 255 (RFC 2449 4)")
    for name in ("idle_timeout", "login_failure_window"):
        if getattr(pop3, name) <= 0:
            raise ConfigError(f"pop3.{name}", "must be greater than 0")
    if pop3.login_failure_delay < 0:
        raise ConfigError("pop3.login_failure_delay", "must not be negative")
    for name in ("max_errors", "max_connections_per_client", "max_login_failures",
                 "max_client_login_failures"):  # fmt: skip
        if getattr(pop3, name) < 1:
            raise ConfigError(f"pop3.{name}", "must be at least 1")


def _check_imap(imap: IMAPConfig) -> None:
    if imap.max_line_length < 1024:
        raise ConfigError("imap.max_line_length", "must be at least 1024")
    if imap.max_literal_size < 1024:
        raise ConfigError("imap.max_literal_size", "must be at least 1024")
    if imap.idle_timeout < 1800:
        raise ConfigError("imap.idle_timeout", "must be at least 1800 (RFC 3501 5.4)")
    if imap.login_failure_window <= 0:
        raise ConfigError("imap.login_failure_window", "must be greater than 0")
    if imap.login_failure_delay < 0:
        raise ConfigError("imap.login_failure_delay", "must not be negative")
    for name in ("max_errors", "max_connections_per_client", "max_login_failures",
                 "max_client_login_failures"):  # fmt: skip
        if getattr(imap, name) < 1:
            raise ConfigError(f"imap.{name}", "must be at least 1")


def _check_listeners(listeners: Listeners) -> None:
    from twisted.internet.endpoints import serverFromString
    from twisted.internet.testing import MemoryReactor

    for a in attrs.fields(Listeners):
        for i, description in enumerate(getattr(listeners, a.name)):
            try:
                # Building an endpoint on a fake reactor checks it without binding anything.
                serverFromString(MemoryReactor(), description)
            except (ValueError, KeyError, TypeError, OSError) as e:
                raise ConfigError(
                    f"listeners.{a.name}[{i}]", f"bad endpoint {description!r}: {e}"
                ) from None
