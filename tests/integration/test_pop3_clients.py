"""Real POP3 clients against `twistd mailstack` over loopback: poplib, fetchmail, curl."""

from __future__ import annotations

import os
import poplib
import subprocess
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest

from tests.tools import require_tool

from .pop3_server import DOMAIN, PASSWORD, Server

USERS = ["poplib", "stls", "pop3s", "fetch", "curl"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("pop3"), USERS).start()
    yield server
    server.stop()


def mime_message(n: int) -> bytes:
    message = EmailMessage()
    message["From"] = "sender@example.net"
    message["To"] = f"poplib@{DOMAIN}"
    message["Subject"] = f"attachment {n}"
    message.set_content("See the attachment.\n.a line that starts with a dot\n..and two\n")
    message.add_attachment(os.urandom(50_000), maintype="application", subtype="octet-stream",
                           filename="data.bin")  # fmt: skip
    return message.as_bytes(policy=SMTP)  # CRLF line ends


def login(client: poplib.POP3, user: str) -> None:
    client.user(f"{user}@{DOMAIN}")
    client.pass_(PASSWORD)


def test_poplib_uidl_top_retr_byte_identical(server: Server) -> None:
    crlf = mime_message(1)
    lf = b"Subject: stored with LF\n\nbody\n.dot\n"
    server.drop("poplib", crlf)
    server.drop("poplib", lf)
    client = poplib.POP3("127.0.0.1", server.pop3, timeout=10)
    try:
        login(client, "poplib")
        count, size = client.stat()
        assert count == 2
        assert size == len(crlf) + len(lf.replace(b"\n", b"\r\n"))
        uidls = client.uidl()[1]
        assert len(uidls) == 2 and len(set(u.split()[1] for u in uidls)) == 2
        reply, lines, octets = client.retr(1)
        assert b"\r\n".join(lines) + b"\r\n" == crlf  # dot-unstuffed by poplib: byte-identical
        assert reply == b"+OK %d octets" % len(crlf)
        assert client.retr(2)[1] == lf.rstrip(b"\n").split(b"\n")
        head = client.top(1, 0)[1]
        assert b"Subject: attachment 1" in head and head[-1] == b""
        assert client.list()[1] == [b"1 %d" % len(crlf), b"2 %d" % len(lf.replace(b"\n", b"\r\n"))]
        client.quit()
    finally:
        client.close()


def test_poplib_stls(server: Server) -> None:
    server.drop("stls", b"Subject: over stls\r\n\r\nhello\r\n")
    client = poplib.POP3("127.0.0.1", server.pop3, timeout=10)
    try:
        assert "STLS" in client.capa()
        client.stls(server.tls_context())
        assert "STLS" not in client.capa()
        login(client, "stls")
        assert client.retr(1)[1] == [b"Subject: over stls", b"", b"hello"]
        client.quit()
    finally:
        client.close()


def test_poplib_implicit_tls(server: Server) -> None:
    server.drop("pop3s", b"Subject: over pop3s\r\n\r\nhello\r\n")
    client = poplib.POP3_SSL("127.0.0.1", server.pop3s, timeout=10, context=server.tls_context())
    try:
        login(client, "pop3s")
        assert client.stat()[0] == 1
        client.dele(1)
        client.quit()
    finally:
        client.close()
    assert not list((server.maildir("pop3s") / "cur").iterdir())


def test_fetchmail_retrieves_into_a_folder(server: Server, tmp_path: Path) -> None:
    fetchmail = require_tool("fetchmail")
    sent = [b"Subject: fetch %d\r\n\r\nbody %d\r\n.dot line\r\n" % (i, i) for i in range(5)]
    for message in sent:
        server.drop("fetch", message)
    folder = tmp_path / "folder"
    folder.mkdir()
    mda = tmp_path / "mda.sh"
    mda.write_text(f'#!/bin/sh\nexec cat > "{folder}/$(date +%s%N).$$"\n')
    mda.chmod(0o700)
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        f'poll 127.0.0.1 protocol pop3 port {server.pop3}\n'
        f'  user "fetch@{DOMAIN}" password "{PASSWORD}"\n'
        f'  sslproto tls1.2+ sslcertck sslcommonname localhost sslcertfile "{server.cert}"\n'
        f'  mda "{mda}"\n'
    )  # fmt: skip
    rc.chmod(0o600)
    env = {**os.environ, "HOME": str(tmp_path), "FETCHMAILHOME": str(tmp_path)}
    result = subprocess.run([fetchmail, "-f", str(rc), "--nosyslog", "-v"], env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "STLS" in result.stdout + result.stderr  # it took the offered upgrade
    got = sorted(p.read_bytes() for p in folder.iterdir())
    assert len(got) == 5
    for message in sent:
        # fetchmail hands messages to the MDA with LF line ends, under its Received header
        assert sum(g.endswith(message.replace(b"\r\n", b"\n")) for g in got) == 1
    assert not list((server.maildir("fetch") / "cur").iterdir())  # fetched and deleted at QUIT
    assert not list((server.maildir("fetch") / "new").iterdir())


def test_curl(server: Server) -> None:
    curl = require_tool("curl")
    message = b"Subject: for curl\r\n\r\nhello curl\r\n"
    server.drop("curl", message)
    url = f"pop3://127.0.0.1:{server.pop3}/"
    common = [curl, "-sS", "--max-time", "20", "-u", f"curl@{DOMAIN}:{PASSWORD}"]
    listing = subprocess.run([*common, url], capture_output=True, timeout=30, check=True).stdout
    assert listing == b"1 %d\r\n" % len(message)
    for tls in ([], ["--ssl-reqd", "--cacert", server.cert]):
        body = subprocess.run(
            [*common, *tls, url + "1"], capture_output=True, timeout=30, check=True
        )
        assert body.stdout == message
