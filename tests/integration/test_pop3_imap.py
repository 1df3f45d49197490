"""POP3 and IMAP on one mailbox, with real clients: POP3 deletions reach an open IMAP session."""

from __future__ import annotations

import imaplib
import poplib
import smtplib
from collections.abc import Iterator

import pytest

from . import imap_server
from .imap_server import DOMAIN, PASSWORD

USERS = ["shared", "dropped"]


class Server(imap_server.Server):
    LISTENERS = ("imap", "pop3", "smtp")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("pop3imap")
    server = Server(root, USERS).start()
    yield server
    server.stop()


def deliver(server: Server, user: str, count: int) -> None:
    with smtplib.SMTP("127.0.0.1", server.smtp, timeout=10) as smtp:
        for n in range(1, count + 1):
            body = f"Subject: message {n}\r\n\r\nbody {n}\r\n".encode()
            smtp.sendmail("sender@example.net", [f"{user}@{DOMAIN}"], body)


def imap_session(server: Server, user: str) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", server.imap, timeout=10)
    client.login(f"{user}@{DOMAIN}", PASSWORD)
    status, data = client.select("INBOX")
    assert status == "OK", data
    return client


def pop3_session(server: Server, user: str) -> poplib.POP3:
    client = poplib.POP3("127.0.0.1", server.ports["POP3"], timeout=10)
    client.user(f"{user}@{DOMAIN}")
    client.pass_(PASSWORD)
    return client


def noop_expunges(client: imaplib.IMAP4) -> list[int]:
    """Run NOOP; the sequence numbers of the EXPUNGE responses it brought, in order."""
    status, _ = client.noop()
    assert status == "OK"
    return [int(n) for n in client.untagged_responses.pop("EXPUNGE", [])]


def subjects(client: imaplib.IMAP4) -> list[bytes]:
    status, data = client.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert status == "OK", data
    return [part[1].strip() for part in data if isinstance(part, tuple)]


def test_pop3_deletions_are_expunges_in_an_open_imap_session(server: Server) -> None:
    deliver(server, "shared", 3)
    imap = imap_session(server, "shared")
    try:
        assert imap.untagged_responses.get("EXISTS", [b"0"])[-1] == b"3"
        pop = pop3_session(server, "shared")
        pop.dele(1)
        pop.dele(3)
        # RFC 1939 6: nothing is removed before QUIT, so IMAP sees no expunge yet.
        assert noop_expunges(imap) == []
        pop.quit()
        # RFC 3501 7.4.1: each EXPUNGE renumbers the messages after it; the two removed
        # (numbers 1 and 3) come out as "3, 1" or "1, 2" depending on the order.
        expunged = noop_expunges(imap)
        assert expunged in ([3, 1], [1, 2]), expunged
        assert subjects(imap) == [b"Subject: message 2"]
    finally:
        imap.logout()


def test_a_dropped_pop3_session_expunges_nothing(server: Server) -> None:
    deliver(server, "dropped", 2)
    imap = imap_session(server, "dropped")
    try:
        pop = pop3_session(server, "dropped")
        pop.dele(1)
        pop.dele(2)
        pop.sock.close()  # the connection drops before QUIT
        pop.file.close()
        # A later POP3 session gets the lock (the first one is gone) and still sees both.
        second = None
        for _ in range(50):
            try:
                second = pop3_session(server, "dropped")
                break
            except poplib.error_proto as e:  # [IN-USE] until the server saw the drop
                assert b"IN-USE" in e.args[0], e
                imap.noop()  # a round trip, not a sleep: gives the server time to see it
        assert second is not None
        assert second.stat()[0] == 2
        second.quit()
        assert noop_expunges(imap) == []
        assert subjects(imap) == [b"Subject: message 1", b"Subject: message 2"]
    finally:
        imap.logout()
