"""The maildrop rules of RFC 1939, end to end against `twistd mailstack` with its Maildir store."""

from __future__ import annotations

import poplib
import smtplib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .pop3_server import DOMAIN, PASSWORD, Server

USERS = ["drop", "twice", "rset", "smtp", "restart"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("pop3"), USERS).start()
    yield server
    server.stop()


def session(server: Server, user: str, retry_in_use: float = 5.0) -> poplib.POP3:
    """Log in; a lock left by a session that just ended may take a moment to be released."""
    deadline = time.monotonic() + retry_in_use
    while True:
        client = poplib.POP3("127.0.0.1", server.pop3, timeout=10)
        client.user(f"{user}@{DOMAIN}")
        try:
            client.pass_(PASSWORD)
            return client
        except poplib.error_proto as e:
            client.close()
            if b"[IN-USE]" not in e.args[0] or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def fill(server: Server, user: str, n: int) -> None:
    for i in range(n):
        server.drop(user, b"Subject: %d\r\n\r\nbody\r\n" % i)


def test_a_dropped_connection_deletes_nothing(server: Server) -> None:
    fill(server, "drop", 3)
    client = session(server, "drop")
    assert client.stat()[0] == 3
    for n in (1, 2, 3):
        client.dele(n)
    client.sock.shutdown(socket.SHUT_RDWR)  # gone without QUIT: no UPDATE state
    client.close()
    client = session(server, "drop")
    assert client.stat()[0] == 3
    client.quit()


def test_a_second_concurrent_login_is_in_use(server: Server) -> None:
    fill(server, "twice", 1)
    first = session(server, "twice")
    second = poplib.POP3("127.0.0.1", server.pop3, timeout=10)
    try:
        second.user(f"twice@{DOMAIN}")
        with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
            second.pass_(PASSWORD)
        assert first.stat()[0] == 1  # the first session is unharmed
        first.quit()
        second.user(f"twice@{DOMAIN}")
        assert second.pass_(PASSWORD).startswith(b"+OK")
        second.quit()
    finally:
        second.close()


def test_dele_then_rset_keeps_everything(server: Server) -> None:
    fill(server, "rset", 2)
    client = session(server, "rset")
    client.dele(1)
    client.dele(2)
    assert client.stat()[0] == 0
    client.rset()
    assert client.stat()[0] == 2
    client.quit()
    client = session(server, "rset")
    assert client.stat()[0] == 2
    client.dele(2)
    client.quit()
    client = session(server, "rset")
    assert client.retr(1)[1][0] == b"Subject: 0"
    assert client.stat()[0] == 1
    client.quit()


def test_mail_arriving_by_smtp_waits_for_the_next_session(server: Server) -> None:
    fill(server, "smtp", 1)
    client = session(server, "smtp")
    assert client.stat()[0] == 1
    with smtplib.SMTP("127.0.0.1", server.smtp, timeout=10) as smtp:
        smtp.sendmail("someone@example.net", [f"smtp@{DOMAIN}"], b"Subject: by smtp\r\n\r\nhi\r\n")
    assert client.stat()[0] == 1
    assert len(client.uidl()[1]) == 1
    with pytest.raises(poplib.error_proto):
        client.retr(2)
    client.quit()
    client = session(server, "smtp")
    assert client.stat()[0] == 2
    assert b"Subject: by smtp" in client.retr(2)[1]
    client.quit()


def test_uidl_is_stable_across_a_restart(tmp_path: Path) -> None:
    server = Server(tmp_path, ["restart"]).start()
    try:
        fill(server, "restart", 3)
        client = session(server, "restart")
        before = client.uidl()[1]
        client.dele(2)
        client.quit()
        server.stop()
        server.start()
        client = session(server, "restart")
        after = client.uidl()[1]
        client.quit()
    finally:
        server.stop()
    ids = [line.split()[1] for line in before]
    assert [line.split()[1] for line in after] == [ids[0], ids[2]]
