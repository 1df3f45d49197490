"""mbsync (isync) and curl against `twistd mailstack` over loopback IMAP."""

from __future__ import annotations

import imaplib
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tools import require_tool

from .imap_server import DOMAIN, PASSWORD, Server

USERS = ["sync", "curl"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("imapsync"), USERS).start()
    yield server
    server.stop()


def _mbsync_config(server: Server, local: Path) -> str:
    return f"""IMAPAccount acc
Host 127.0.0.1
Port {server.imaps}
User sync@{DOMAIN}
Pass "{PASSWORD}"
SSLType IMAPS
CertificateFile {server.cert}

IMAPStore remote
Account acc

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel ch
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
"""


def _mbsync(mbsync: str, config: Path) -> None:
    done = subprocess.run([mbsync, "-c", str(config), "-a"], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()


def test_mbsync_both_ways_with_flags(server: Server, tmp_path: Path) -> None:
    mbsync = require_tool("mbsync")
    client = imaplib.IMAP4("127.0.0.1", server.imap, timeout=10)
    client.login(f"sync@{DOMAIN}", PASSWORD)
    message = b"From: a@example.net\r\nSubject: to sync\r\n\r\nbody\r\n"
    client.append("INBOX", "(\\Flagged)", None, message)
    client.create("Projects")
    local = tmp_path / "Mail"
    local.mkdir()
    config = tmp_path / "mbsyncrc"
    config.write_text(_mbsync_config(server, local))
    _mbsync(mbsync, config)
    files = list((local / "INBOX" / "cur").iterdir()) + list((local / "INBOX" / "new").iterdir())
    assert len(files) == 1
    # mbsync stores LF line ends locally and may add its X-TUID header.
    local_copy = re.sub(rb"(?m)^X-TUID: .*\n", b"", files[0].read_bytes())
    assert local_copy == message.replace(b"\r\n", b"\n")
    assert files[0].name.endswith(",F") or ":2,F" in files[0].name
    assert (local / "Projects").is_dir() and (local / "Sent").is_dir()
    # Seen locally -> \Seen on the server; a new local message -> appended on the server.
    seen = files[0].with_name(files[0].name.replace(":2,F", ":2,FS"))
    files[0].rename(local / "INBOX" / "cur" / seen.name)
    (local / "Projects" / "new" / "1.local.test").write_bytes(b"Subject: from local\r\n\r\nx\r\n")
    _mbsync(mbsync, config)
    client.select("INBOX")
    typ, data = client.fetch("1", "(FLAGS)")
    assert b"\\Seen" in data[0] and b"\\Flagged" in data[0]  # type: ignore[operator]
    client.select("Projects")
    typ, data = client.fetch("1", "(BODY.PEEK[])")
    uploaded = re.sub(rb"(?m)^X-TUID: .*\r\n", b"", data[0][1])  # type: ignore[call-overload]
    assert uploaded == b"Subject: from local\r\n\r\nx\r\n"
    # A flag set on the server reaches the local copy.
    client.store("1", "+FLAGS", "(\\Answered)")
    client.logout()
    _mbsync(mbsync, config)
    names = [p.name for p in (local / "Projects" / "cur").iterdir()]
    assert len(names) == 1 and "R" in names[0].rsplit(",", 1)[1], names


def test_curl_list_fetch_over_starttls(server: Server) -> None:
    curl = require_tool("curl")
    client = imaplib.IMAP4("127.0.0.1", server.imap, timeout=10)
    client.login(f"curl@{DOMAIN}", PASSWORD)
    client.append("INBOX", None, None, b"Subject: for curl\r\n\r\nhello curl\r\n")
    client.logout()
    common = [curl, "-sS", "--max-time", "20", "-u", f"curl@{DOMAIN}:{PASSWORD}",
              "--ssl-reqd", "--cacert", server.cert]  # fmt: skip
    base = f"imap://127.0.0.1:{server.imap}"
    listing = subprocess.run([*common, base + "/"], capture_output=True, timeout=30, check=True)
    assert b'"/" INBOX' in listing.stdout and b"\\Trash" in listing.stdout
    body = subprocess.run(
        [*common, base + "/INBOX;UID=1"], capture_output=True, timeout=30, check=True
    )
    assert body.stdout == b"Subject: for curl\r\n\r\nhello curl\r\n"
