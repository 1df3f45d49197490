"""Real IMAP clients (imaplib, imapclient) against `twistd mailstack` over loopback."""

from __future__ import annotations

import imaplib
import os
import re
import smtplib
import socket
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from .imap_server import DOMAIN, PASSWORD, Server

USERS = ["folders", "messages", "idle", "tls", "client", "limits"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("imap"), USERS).start()
    yield server
    server.stop()


def connect(server: Server, user: str) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", server.imap, timeout=10)
    client.login(f"{user}@{DOMAIN}", PASSWORD)
    return client


def mime_message(n: int) -> bytes:
    message = EmailMessage()
    message["From"] = "sender@example.net"
    message["To"] = f"messages@{DOMAIN}"
    message["Subject"] = f"attachment {n}"
    message.set_content("See the attachment.\n")
    message.add_attachment(os.urandom(40_000), maintype="application", subtype="octet-stream",
                           filename="data.bin")  # fmt: skip
    return message.as_bytes(policy=SMTP)


def ok(response: tuple[str, list[object]]) -> list[object]:
    status, data = response
    assert status == "OK", response
    return data


def test_folders_create_list_rename_delete_subscribe(server: Server) -> None:
    client = connect(server, "folders")
    try:
        names = ok(client.list())
        assert b'(\\HasNoChildren) "/" INBOX' in names
        assert b'(\\HasNoChildren \\Sent) "/" Sent' in names
        ok(client.create("Projects/2024"))
        ok(client.create("Entwürfe".encode("utf-7").replace(b"+", b"&").decode()))
        ok(client.rename("Projects/2024", "Projects/2025"))
        names = ok(client.list('""', "Projects/*"))
        assert names == [b'(\\HasNoChildren) "/" Projects/2025']
        ok(client.subscribe("Projects/2025"))
        assert ok(client.lsub('""', "Projects/*")) == [b'() "/" Projects/2025']
        ok(client.delete("Projects/2025"))
        assert client.select("Projects/2025")[0] == "NO"
        status, data = client.create("INBOX")
        assert status == "NO" and b"[ALREADYEXISTS]" in data[0]  # type: ignore[operator]
        ok(client.rename("INBOX", "Old"))
        assert b"(MESSAGES 0)" in ok(client.status("INBOX", "(MESSAGES)"))[0]  # type: ignore[operator]
    finally:
        client.logout()


def test_append_fetch_store_copy_move_expunge(server: Server) -> None:
    client = connect(server, "messages")
    try:
        bodies = [mime_message(n) for n in range(3)]
        for body in bodies:
            data = ok(client.append("INBOX", "(\\Flagged)", None, body))
            assert re.match(rb"\[APPENDUID \d+ \d+\]", data[0])  # type: ignore[arg-type]
        assert ok(client.select("INBOX")) == [b"3"]
        typ, data = client.fetch("1:3", "(BODY.PEEK[] FLAGS)")
        assert typ == "OK"
        fetched = [part[1] for part in data if isinstance(part, tuple)]
        assert fetched == bodies  # byte-identical
        ok(client.store("2", "+FLAGS", "(\\Seen $Work)"))
        assert ok(client.search(None, "UNSEEN")) == [b"1 3"]
        assert ok(client.search(None, "KEYWORD", "$Work")) == [b"2"]
        assert ok(client.uid("SEARCH", "SUBJECT", '"attachment 2"')) == [b"3"]
        ok(client.uid("COPY", "1:2", "Archive"))
        code = client.response("COPYUID")[1][0]
        assert re.fullmatch(rb"\d+ 1:2 1:2", code), code  # type: ignore[arg-type]
        ok(client.uid("MOVE", "3", "Trash"))
        assert client.response("EXPUNGE") == ("EXPUNGE", [b"3"])
        assert ok(client.status("Trash", "(MESSAGES)")) == [b"Trash (MESSAGES 1)"]
        ok(client.store("1", "+FLAGS", "(\\Deleted)"))
        typ, data = client.expunge()
        assert typ == "OK" and data == [b"1"]
        typ, data = client.fetch("1", "(FLAGS)")
        assert b"\\Seen" in data[0] and b"$Work" in data[0]  # type: ignore[operator]
        ok(client.close())
        ok(client.select("Archive", readonly=True))
        typ, data = client.fetch("2", "(BODY[])")
        assert data[0][1] == bodies[1]  # type: ignore[index]
        assert client.store("1", "+FLAGS", "(\\Seen)")[0] == "NO"
    finally:
        client.logout()


def test_idle_push_after_smtp_delivery(server: Server) -> None:
    client = connect(server, "idle")
    try:
        ok(client.select("INBOX"))
        client.send(b"i1 IDLE\r\n")
        assert client.readline().startswith(b"+ ")
        start = time.monotonic()
        with smtplib.SMTP("127.0.0.1", server.smtp, timeout=10) as smtp:
            smtp.sendmail("sender@example.net", [f"idle@{DOMAIN}"], b"Subject: push\r\n\r\nhi\r\n")
        client.sock.settimeout(10)  # generous: the push is expected within a second
        line = client.readline()
        elapsed = time.monotonic() - start
        assert line == b"* 1 EXISTS\r\n", line
        assert elapsed < 10
        client.send(b"DONE\r\n")
        rest = b""
        while not rest.endswith(b"i1 OK IDLE terminated\r\n"):
            rest += client.readline()
    finally:
        client.logout()


def test_starttls_and_implicit_tls(server: Server) -> None:
    client = imaplib.IMAP4("127.0.0.1", server.imap, timeout=10)
    try:
        assert "STARTTLS" in client.capabilities
        ok(client.starttls(server.tls_context()))
        assert "STARTTLS" not in client.capabilities
        ok(client.login(f"tls@{DOMAIN}", PASSWORD))
        ok(client.select("INBOX"))
    finally:
        client.logout()
    secure = imaplib.IMAP4_SSL("127.0.0.1", server.imaps, ssl_context=server.tls_context(),
                               timeout=10)  # fmt: skip
    try:
        ok(secure.login(f"tls@{DOMAIN}", PASSWORD))
        ok(secure.list())
    finally:
        secure.logout()


def test_imapclient(server: Server) -> None:
    from imapclient import IMAPClient

    with IMAPClient(
        "127.0.0.1", port=server.imaps, ssl_context=server.tls_context(), timeout=10
    ) as client:
        client.login(f"client@{DOMAIN}", PASSWORD)
        assert b"MOVE" in client.capabilities() and b"CONDSTORE" in client.capabilities()
        client.create_folder("Lists")
        assert client.folder_exists("Lists")
        client.append("INBOX", b"Subject: one\r\n\r\nfirst\r\n", flags=[b"\\Draft"])
        client.append("INBOX", b"Subject: two\r\n\r\nsecond\r\n")
        info = client.select_folder("INBOX")
        assert info[b"EXISTS"] == 2 and info[b"UIDNEXT"] == 3
        assert client.search(["SUBJECT", "two"]) == [2]
        client.add_flags([1], [b"\\Seen"])
        flags = client.get_flags([1, 2])
        assert set(flags[1]) == {b"\\Draft", b"\\Seen", b"\\Recent"}
        assert flags[2] == (b"\\Recent",)
        fetched = client.fetch([1, 2], ["BODY.PEEK[]", "RFC822.SIZE", "ENVELOPE"])
        assert fetched[2][b"BODY[]"] == b"Subject: two\r\n\r\nsecond\r\n"
        assert fetched[1][b"ENVELOPE"].subject == b"one"
        client.move([2], "Lists")
        assert client.folder_status("Lists", [b"MESSAGES"])[b"MESSAGES"] == 1
        assert client.namespace().personal == (("", "/"),)
        client.idle()
        client.idle_done()
        specials = {name: flags for flags, _, name in client.list_folders()}
        assert b"\\Trash" in specials["Trash"]
        client.delete_folder("Lists")
        client.logout()


def test_bad_input_gets_bad_and_session_survives(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.imap), timeout=10) as sock:
        stream = sock.makefile("rwb")
        assert stream.readline().startswith(b"* OK [CAPABILITY")
        stream.write(b"a1 FROB\r\n\x00\xff junk\r\na2 NOOP\r\n")
        stream.flush()
        assert stream.readline() == b"a1 BAD unknown command FROB\r\n"
        assert stream.readline().startswith(b"* BAD")
        assert stream.readline() == b"a2 OK NOOP completed\r\n"
        stream.write(b"a3 LOGIN x {99999999}\r\n")
        stream.flush()
        assert b"TOOBIG" in stream.readline()
        stream.write(b"a4 LOGOUT\r\n")
        stream.flush()
        assert stream.readline() == b"* BYE logging out\r\n"


def test_starttls_drops_pipelined_plaintext(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.imap), timeout=10) as sock:
        assert sock.recv(4096).startswith(b"* OK")
        # The injected command rides in the same packet as STARTTLS (CVE-2011-0411).
        sock.sendall(b"a STARTTLS\r\nb LOGOUT\r\n")
        reply = b""
        while not reply.endswith(b"\r\n"):
            reply += sock.recv(1)
        assert reply == b"a OK begin TLS negotiation now\r\n"
        tls = server.tls_context().wrap_socket(sock, server_hostname="127.0.0.1")
        tls.sendall(b"c NOOP\r\n")
        answer = b""
        while not answer.endswith(b"c OK NOOP completed\r\n"):
            chunk = tls.recv(4096)
            assert chunk, answer
            answer += chunk
        assert b"BYE" not in answer and b"b " not in answer
        tls.close()
