"""
OfflineIMAP and mutt against `twistd mailstack` over loopback IMAP.

OfflineIMAP syncs the account to a local Maildir and back (flags both ways, a message and a
folder made locally, a large message that the server spools) over implicit TLS, with the
server's certificate pinned by fingerprint: its own host check ignores IP addresses in the
certificate, and its STARTTLS is unreliable against any TLS 1.3 server (imaplib2's reader thread
blocks in an SSL read of the session tickets while its writer thread writes on the same SSL
object; one run in a few fails with an "unexpected message" alert or hangs).

Mutt runs its full-screen index on a pseudo-terminal over STARTTLS, driven by a C{push} of key
functions: it copies a message to a local Maildir and flags it on the server.
"""

from __future__ import annotations

import hashlib
import imaplib
import os
import re
import select
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.tools import require_tool

from .imap_server import DOMAIN, PASSWORD, Server

USERS = ["offline", "mutt"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("imapclients"), USERS)
    server.start()
    yield server
    server.stop()


def _login(server: Server, user: str) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", server.imap, timeout=10)
    client.starttls(server.tls_context())
    client.login(f"{user}@{DOMAIN}", PASSWORD)
    return client


def _files(folder: Path) -> list[Path]:
    return sorted(p for sub in ("cur", "new") for p in (folder / sub).iterdir())


def _flags(path: Path) -> str:
    return path.name.rsplit(":2,", 1)[1]


# -- OfflineIMAP ----------------------------------------------------------------------------


def _offlineimap_config(server: Server, root: Path) -> Path:
    config = root / "offlineimaprc"
    der = ssl.PEM_cert_to_DER_cert(Path(server.cert).read_text())
    fingerprint = hashlib.sha256(der).hexdigest()
    config.write_text(f"""[general]
accounts = acc
metadata = {root}/meta

[Account acc]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {root}/Mail

[Repository remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = {server.imaps}
remoteuser = offline@{DOMAIN}
remotepass = {PASSWORD}
ssl = yes
cert_fingerprint = {fingerprint}
""")
    return config


def _offlineimap(offlineimap: str, config: Path) -> str:
    done = subprocess.run(
        [offlineimap, "-c", str(config), "-o", "-u", "basic"], capture_output=True, timeout=30
    )
    out = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 0 and "ERROR" not in out, out
    return out


def _literal(data: list[Any], index: int = 0) -> bytes:
    """The literal of the C{index}-th FETCH response imaplib returned."""
    item = data[index]
    assert isinstance(item, tuple), data
    return bytes(item[1])


def _without_offlineimap_header(data: bytes) -> bytes:
    # OfflineIMAP adds X-OfflineIMAP to an upload when the server cannot tell it the new UID;
    # with UIDPLUS (APPENDUID) it should not, but the header is its to add.
    return re.sub(rb"(?mi)^X-OfflineIMAP: .*\r?\n", b"", data)


def test_offlineimap_syncs_both_ways(server: Server, tmp_path: Path) -> None:
    offlineimap = require_tool("offlineimap")
    client = _login(server, "offline")
    one = b"From: a@example.net\r\nSubject: one\r\n\r\nbody one\r\n"
    two = b"From: b@example.net\r\nSubject: two\r\n\r\nbody two\r\n" + b"line\r\n" * 100
    client.append("INBOX", "(\\Flagged)", None, one)
    client.append("INBOX", None, None, two)
    client.create("Projects")
    client.select("Projects")
    client.append("Projects", "(\\Seen)", None, b"Subject: project\r\n\r\nplan\r\n")
    (tmp_path / "Mail").mkdir()
    config = _offlineimap_config(server, tmp_path)
    _offlineimap(offlineimap, config)

    # Remote to local: every message, byte for byte (OfflineIMAP stores LF line ends), flags.
    mail = tmp_path / "Mail"
    inbox = _files(mail / "INBOX")
    assert [p.read_bytes() for p in inbox] == [m.replace(b"\r\n", b"\n") for m in (one, two)]
    assert [_flags(p) for p in inbox] == ["F", ""]
    [project] = _files(mail / "Projects")
    assert project.read_bytes() == b"Subject: project\n\nplan\n" and _flags(project) == "S"
    assert {"Sent", "Drafts", "Trash", "Junk", "Archive"} <= {p.name for p in mail.iterdir()}

    # Local to remote: a flag, a new message, a new folder, and a large message.
    inbox[1].rename(mail / "INBOX" / "cur" / (inbox[1].name + "RS"))
    (mail / "Projects" / "new" / "1.local.test:2,").write_bytes(b"Subject: local\n\nfrom here\n")
    local = mail / "Local"
    for sub in ("cur", "new", "tmp"):
        (local / sub).mkdir(parents=True)
    big = b"Subject: big\n\n" + b"".join(
        b"line %06d of a large message\n" % i for i in range(20000)
    )
    (local / "cur" / "2.local.test:2,F").write_bytes(big)
    _offlineimap(offlineimap, config)

    client.select("INBOX")
    typ, data = client.uid("FETCH", "1:*", "(FLAGS)")
    assert typ == "OK"
    flags = [re.search(rb"FLAGS \(([^)]*)\)", d).group(1).split() for d in data]  # type: ignore[union-attr, arg-type]
    assert sorted(flags[0]) == [b"\\Flagged"]
    assert sorted(flags[1]) == [b"\\Answered", b"\\Seen"]
    client.select("Projects")
    typ, data = client.fetch("2", "(BODY.PEEK[])")
    assert _without_offlineimap_header(_literal(data)) == b"Subject: local\r\n\r\nfrom here\r\n"
    typ, listing = client.list()
    assert any(line.endswith(b' "/" Local') for line in listing)  # type: ignore[union-attr]
    client.select("Local")
    typ, data = client.fetch("1:*", "(FLAGS RFC822.SIZE BODY.PEEK[])")
    assert len(data) == 2 and b"\\Flagged" in data[0][0]  # type: ignore[operator, index]
    assert _without_offlineimap_header(_literal(data)) == big.replace(b"\n", b"\r\n")
    # The large APPEND went through a spool file, which is gone again.
    assert [p for p in (server.data / "spool").iterdir() if p.name.startswith("imap-")] == []

    # A flag set on the server reaches the local copy.
    client.select("INBOX")
    client.store("1", "+FLAGS", "(\\Seen)")
    client.logout()
    _offlineimap(offlineimap, config)
    assert [_flags(p) for p in _files(mail / "INBOX")] == ["FS", "RS"]


# -- mutt -----------------------------------------------------------------------------------


def _run_on_terminal(argv: list[str], env: dict[str, str], timeout: float = 30) -> bytes:
    """Run a full-screen program on a pseudo-terminal of 24x80; return what it drew."""
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    process = subprocess.Popen(
        argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
    )
    os.close(slave)
    screen = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the program has exited and closed the terminal
                    break
                if not data:
                    break
                screen += data
            elif process.poll() is not None:
                break
        else:
            raise AssertionError(f"{argv[0]} did not finish: {bytes(screen)[-2000:]!r}")
        assert process.wait(timeout=10) == 0, bytes(screen)[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    return bytes(screen)


def test_mutt_reads_copies_and_flags_over_starttls(server: Server, tmp_path: Path) -> None:
    mutt = require_tool("mutt")
    message = (
        b"From: a@example.net\r\nTo: mutt@example.org\r\nSubject: for mutt\r\n"
        b"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <m1@example.net>\r\n\r\n"
        b"hello mutt\r\n"
    )
    client = _login(server, "mutt")
    client.append("INBOX", None, None, message)
    muttrc = tmp_path / "muttrc"
    saved = tmp_path / "saved"
    muttrc.write_text(f"""set imap_user="mutt@{DOMAIN}"
set imap_pass="{PASSWORD}"
set ssl_starttls=yes
set ssl_force_tls=yes
set ssl_ca_certificates_file="{server.cert}"
set header_cache=""
set message_cachedir=""
set confirmcreate=no
set confirmappend=no
set quit=yes
set mbox_type=Maildir
set folder="{tmp_path}"
set record=""
""")
    folder = f"imap://127.0.0.1:{server.imap}/INBOX"
    keys = f"<copy-message>{saved}<enter><set-flag>!<sync-mailbox><quit>"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "TERM": "vt100"}
    screen = _run_on_terminal(
        [mutt, "-n", "-F", str(muttrc), "-f", folder, "-e", f'push "{keys}"'], env
    )
    assert b"Authenticating" in screen and b"for mutt" in screen, screen[-2000:]
    [copy] = _files(saved)
    # Mutt stores LF line ends and adds Content-Length and Lines when it copies a message.
    local = re.sub(rb"(?m)^(Content-Length|Lines): .*\n", b"", copy.read_bytes())
    assert local == message.replace(b"\r\n", b"\n")
    client.select("INBOX")
    typ, data = client.fetch("1", "(FLAGS)")
    assert b"\\Flagged" in data[0]  # type: ignore[operator]
    client.logout()
