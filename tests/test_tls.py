"""TLS settings: the self-signed pair, configured pairs and their errors, real handshakes."""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import socket
import ssl
import tempfile
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twisted.internet import reactor
from twisted.internet.interfaces import ITLSTransport
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.threads import deferToThread
from twisted.logger import ILogObserver, Logger, formatEvent
from twisted.trial import unittest
from zope.interface import implementer

from twisted_mail_stack import tls
from twisted_mail_stack.errors import ConfigError
from twisted_mail_stack.tls import TLSSettings, generate_self_signed, load_or_create_tls


@implementer(ILogObserver)
class LogRecorder(list[str]):
    def __call__(self, event: dict[str, Any]) -> None:
        self.append(formatEvent(event))


def make(data: Path, hostname: str = "mail.example.org") -> tuple[TLSSettings, LogRecorder]:
    messages = LogRecorder()
    settings = load_or_create_tls(None, None, str(data), hostname, log=Logger(observer=messages))
    return settings, messages


def test_generates_a_self_signed_pair(tmp_path: Path) -> None:
    settings, messages = make(tmp_path, "bücher.example")
    cert_path, key_path = tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem"
    assert (settings.cert_path, settings.key_path) == (str(cert_path), str(key_path))
    assert os.stat(key_path).st_mode & 0o777 == 0o600
    assert os.stat(cert_path).st_mode & 0o777 == 0o644
    assert settings.cert_pem == cert_path.read_bytes()

    cert = x509.load_pem_x509_certificate(settings.cert_pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["xn--bcher-kva.example", "localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert datetime.timedelta(days=3650) <= lifetime <= datetime.timedelta(days=3652)
    assert settings.not_after == cert.not_valid_after_utc
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"

    assert len(settings.fingerprint.split(":")) == 32
    [message] = messages
    assert "Generated a self-signed TLS certificate" in message
    assert str(cert_path) in message and settings.fingerprint in message


def test_reuses_the_pair(tmp_path: Path) -> None:
    first, _ = make(tmp_path)
    second, messages = make(tmp_path)
    assert second.fingerprint == first.fingerprint
    assert second.server_options() is second.server_options()  # built once
    [message] = messages
    assert "Using the self-signed TLS certificate" in message and first.fingerprint in message
    _, messages = make(tmp_path, "other.example.org")
    assert any("does not name other.example.org" in m for m in messages)


def test_regenerates_an_expired_pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, _ = make(tmp_path)
    later = first.not_after + datetime.timedelta(days=1)
    monkeypatch.setattr(tls, "_now", lambda: later)
    second, messages = make(tmp_path)
    assert second.fingerprint != first.fingerprint
    assert "has expired" in messages[0]


def test_key_without_certificate_is_regenerated(tmp_path: Path) -> None:
    # An interrupted generation: the key was written, the certificate not.
    first, _ = make(tmp_path)
    os.unlink(first.cert_path)
    second, _ = make(tmp_path)
    assert second.fingerprint != first.fingerprint


def test_certificate_without_key_is_an_error(tmp_path: Path) -> None:
    first, _ = make(tmp_path)
    os.unlink(first.key_path)
    with pytest.raises(ConfigError, match=f"data_dir: cannot read {first.key_path}"):
        make(tmp_path)


def test_unwritable_data_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="data_dir: cannot write the TLS certificate"):
        make(blocker / "sub")


def test_bad_hostname(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="hostname"):
        make(tmp_path, "a..b")


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    generate_self_signed(str(cert), str(key), "mail.example.org")
    return cert, key


def load(cert: Path | str | None, key: Path | str | None, data: Path) -> TLSSettings:
    return load_or_create_tls(
        None if cert is None else str(cert), None if key is None else str(key), str(data), "x"
    )


def test_configured_pair_with_chain(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    cert, key = pair
    other = tmp_path / "other"
    other.mkdir()
    generate_self_signed(str(other / "c.pem"), str(other / "k.pem"), "intermediate")
    chain = cert.read_bytes() + (other / "c.pem").read_bytes()
    (tmp_path / "chain.pem").write_bytes(chain)
    settings = load(tmp_path / "chain.pem", key, tmp_path / "data")
    assert settings.cert_pem == chain
    assert settings.cert_path == str(tmp_path / "chain.pem")
    assert not (tmp_path / "data").exists()  # nothing generated


@pytest.mark.parametrize(
    ("break_it", "problem"),
    [
        (lambda c, k, t: (t / "missing.pem", k), "tls: cannot read .*missing.pem"),
        (lambda c, k, t: (c, t / "missing.pem"), "tls: cannot read .*missing.pem"),
        (lambda c, k, t: (k, k), "k.pem holds no PEM certificate"),
        (lambda c, k, t: (c, c), "c.pem holds no usable PEM private key"),
        (lambda c, k, t: (c, None), "tls: give both cert and key"),
        (lambda c, k, t: (None, k), "tls: give both cert and key"),
        (lambda c, k, t: (c, _other_key(t)), "other-key.pem does not match the certificate in"),
        (lambda c, k, t: (c, _encrypted_key(k)), "is encrypted"),
    ],
)
def test_configured_errors_name_the_file(
    tmp_path: Path, pair: tuple[Path, Path], break_it: Any, problem: str
) -> None:
    cert, key = break_it(*pair, tmp_path)
    with pytest.raises(ConfigError, match=problem):
        load(cert, key, tmp_path / "data")


def _other_key(directory: Path) -> Path:
    generate_self_signed(str(directory / "other-cert.pem"), str(directory / "other-key.pem"), "x")
    return directory / "other-key.pem"


def _encrypted_key(key: Path) -> Path:
    loaded = serialization.load_pem_private_key(key.read_bytes(), password=None)
    encrypted = key.with_name("encrypted.pem")
    encrypted.write_bytes(
        loaded.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    return encrypted


class Echo(Protocol):
    """Echoes; on the line C{STARTTLS} answers C{GO} and starts TLS with the given options."""

    def dataReceived(self, data: bytes) -> None:  # noqa: N802
        if data == b"STARTTLS\r\n":
            self.transport.write(b"GO\r\n")  # type: ignore[union-attr]
            options = self.factory.tls.server_options()  # type: ignore[attr-defined]
            ITLSTransport(self.transport).startTLS(options)
        else:
            self.transport.write(data)  # type: ignore[union-attr]


class HandshakeTests(unittest.TestCase):
    timeout = 30

    def setUp(self) -> None:
        data = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, data)
        self.settings = load_or_create_tls(None, None, data, "mail.example.org")

    def listen(self, implicit: bool) -> int:
        factory = Factory.forProtocol(Echo)
        factory.tls = self.settings  # type: ignore[attr-defined]
        wrapped = self.settings.wrap_factory(factory) if implicit else factory
        port = reactor.listenTCP(0, wrapped, interface="127.0.0.1")  # type: ignore[arg-type]
        self.addCleanup(port.stopListening)
        return port.getHost().port  # type: ignore[attr-defined, no-any-return]

    def client_context(self, **kwargs: Any) -> ssl.SSLContext:
        context = ssl.create_default_context(cadata=self.settings.cert_pem.decode("ascii"))
        for name, value in kwargs.items():
            setattr(context, name, value)
        return context

    async def test_implicit_tls_echo(self) -> None:
        port = self.listen(implicit=True)
        context = self.client_context()

        def talk(server_hostname: str) -> tuple[bytes, str | None]:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                with context.wrap_socket(raw, server_hostname=server_hostname) as conn:
                    conn.sendall(b"hello\r\n")
                    return conn.recv(100), conn.version()

        for name in ("mail.example.org", "localhost", "127.0.0.1"):
            echoed, version = await deferToThread(talk, name)
            self.assertEqual(echoed, b"hello\r\n")
            self.assertIn(version, ("TLSv1.2", "TLSv1.3"))

    async def test_tls_1_2_accepted(self) -> None:
        port = self.listen(implicit=True)
        context = self.client_context(maximum_version=ssl.TLSVersion.TLSv1_2)

        def talk() -> str | None:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                with context.wrap_socket(raw, server_hostname="localhost") as conn:
                    conn.sendall(b"x")
                    conn.recv(10)
                    return conn.version()

        self.assertEqual(await deferToThread(talk), "TLSv1.2")

    async def test_starttls_echo(self) -> None:
        port = self.listen(implicit=False)
        context = self.client_context()

        def talk() -> bytes:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                raw.sendall(b"STARTTLS\r\n")
                self.assertEqual(raw.recv(4), b"GO\r\n")
                with context.wrap_socket(raw, server_hostname="::1") as conn:
                    conn.sendall(b"secret\r\n")
                    return conn.recv(100)

        self.assertEqual(await deferToThread(talk), b"secret\r\n")
