"""The mailstack admin command: exit codes, messages, passwords never on the command line."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from twisted_mail_stack.auth.passwords import verify_password
from twisted_mail_stack.auth.userdb import UserDB
from twisted_mail_stack.cli import main


class Run:
    def __init__(self, tmp_path: Path) -> None:
        self.data = tmp_path / "data"
        self.config = tmp_path / "c.toml"
        self.config.write_text(
            f'data_dir = "{self.data}"\ndomains = ["example.org", "example.net"]\n'
        )

    def __call__(self, *argv: str, stdin: str = "") -> tuple[int, str]:
        out = io.StringIO()
        code = main(["--config", str(self.config), *argv], stdin=io.StringIO(stdin), out=out)
        return code, out.getvalue()


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return Run(tmp_path)


def test_user_lifecycle(run: Run) -> None:
    assert run("user", "add", "Alice@Example.ORG", stdin="s3cret\n") == (
        0,
        "added alice@example.org\n",
    )
    assert run("user", "list") == (0, "alice@example.org\n")
    db = UserDB.load(str(run.data / "passwd"))
    encoded = db.get_hash("alice@example.org")
    assert encoded is not None and verify_password("s3cret", encoded)
    assert "s3cret" not in (run.data / "passwd").read_text()

    assert run("user", "passwd", "alice@example.org", stdin="n3w\n")[0] == 0
    encoded = UserDB.load(str(run.data / "passwd")).get_hash("alice@example.org")
    assert encoded is not None and verify_password("n3w", encoded)

    assert run("user", "del", "alice@example.org")[0] == 0
    assert run("user", "list") == (0, "")


def test_refusals_exit_1(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("user", "add", "a@example.org", stdin="pw\n")[0] == 0
    assert run("user", "add", "a@example.org", stdin="pw\n")[0] == 1
    assert "user a@example.org exists" in capsys.readouterr().err
    assert run("user", "add", "b@elsewhere.com", stdin="pw\n")[0] == 1
    assert "elsewhere.com is not a local domain" in capsys.readouterr().err
    assert run("user", "add", "c@example.org", stdin="\n")[0] == 1
    assert "empty password" in capsys.readouterr().err
    assert run("user", "del", "nobody@example.org")[0] == 1
    assert run("user", "passwd", "nobody@example.org", stdin="x\n")[0] == 1
    assert run("user", "add", "not-an-address", stdin="pw\n")[0] == 1


def test_usage_and_config_errors_exit_2(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("frobnicate")[0] == 2
    assert run("user", "add", "a@example.org", "--password", "x")[0] == 2
    run.config.write_text("datadir = 1\n")
    assert run("user", "list")[0] == 2
    assert "configuration error: datadir: unknown key" in capsys.readouterr().err


def test_aliases(run: Run) -> None:
    assert run("alias", "add", "info@example.org", "alice@example.org", "bob@example.net")[0] == 0
    assert run("alias", "add", "@example.net", "alice@example.org")[0] == 0
    code, out = run("alias", "list")
    assert code == 0
    assert "info@example.org: alice@example.org, bob@example.net" in out
    assert "@example.net: alice@example.org" in out
    assert run("alias", "add", "x@elsewhere.com", "alice@example.org")[0] == 1
    assert run("alias", "del", "info@example.org")[0] == 0
    assert run("alias", "del", "info@example.org")[0] == 1
    assert "info@example.org" not in run("alias", "list")[1]


def test_check_config(run: Run) -> None:
    code, out = run("check-config")
    assert code == 0
    assert "configuration OK: domains example.org, example.net" in out
    assert "smtp: tcp:2525:interface=127.0.0.1" in out
    assert "relay: MX records; 0 transport(s); DNS: /etc/resolv.conf" in out


def test_check_config_reports_unreadable_tls(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    run.config.write_text(
        f'data_dir = "{run.data}"\n[tls]\ncert = "/nonexistent/c.pem"\nkey = "/nonexistent/k.pem"\n'
    )
    assert run("check-config")[0] == 2
    assert "tls: cannot read /nonexistent/c.pem" in capsys.readouterr().err


# -- queue -------------------------------------------------------------------------------


def _enqueue(data: Path, queue_id: str, rcpts: list[str]) -> None:
    """An entry as SMTP leaves it (the queue's own writer, run without a reactor)."""
    import json as _json
    import os as _os
    from datetime import UTC, datetime

    from twisted_mail_stack.relay.queue import envelope_to_json
    from twisted_mail_stack.values import Envelope, EnvelopeRecipient

    queue = data / "queue"
    (queue / "tmp").mkdir(parents=True, exist_ok=True)
    envelope = Envelope("alice@example.org", tuple(EnvelopeRecipient(r) for r in rcpts))
    (queue / f"{queue_id}.msg").write_bytes(b"Subject: queued\r\nFrom: alice\r\n\r\nbody\r\n")
    text = _json.dumps(envelope_to_json(envelope, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)))
    (queue / f"{queue_id}.json").write_text(text)
    seconds = int(queue_id[1:])  # list order is arrival (mtime) order
    _os.utime(queue / f"{queue_id}.json", (seconds, seconds))


def test_queue_on_a_stopped_server(run: Run) -> None:
    import json as _json

    assert run("queue", "list") == (0, "0 messages queued\n")
    _enqueue(run.data, "A1", ["bob@remote.test", "carol@remote.test"])
    _enqueue(run.data, "A2", ["dave@remote.test"])
    code, out = run("queue", "list")
    assert code == 0
    assert out.splitlines() == [
        "A1         38  2026-01-02 03:04:05  <alice@example.org>  next: now",
        "    pending   <bob@remote.test>",
        "    pending   <carol@remote.test>",
        "A2         38  2026-01-02 03:04:05  <alice@example.org>  next: now",
        "    pending   <dave@remote.test>",
        "2 messages queued",
    ]
    code, out = run("queue", "show", "A1")
    assert code == 0
    assert "sender: <alice@example.org>" in out
    assert "recipient: <carol@remote.test> pending" in out
    assert out.endswith("Subject: queued\nFrom: alice\n")

    assert run("queue", "bounce", "A1") == (
        0,
        "A1: bounced; the sender is notified when the server starts\n",
    )
    state = _json.loads((run.data / "queue" / "A1.state").read_text())
    assert [(r["state"], r["status"], r["notified"]) for r in state["recipients"]] == [
        ("failed", "5.0.0", False)
    ] * 2
    assert "failed    <bob@remote.test> (delivery cancelled" in run("queue", "list")[1]
    assert run("queue", "retry", "A2") == (0, "A2: due when the server starts\n")
    assert run("queue", "flush") == (0, "flush: 2 message(s) due when the server starts\n")
    assert run("queue", "delete", "A2") == (0, "A2: deleted\n")
    assert sorted(p.name for p in (run.data / "queue").iterdir() if p.is_file()) == [
        "A1.json",
        "A1.msg",
        "A1.state",
    ]


def test_queue_refusals(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    for action in ("show", "retry", "delete", "bounce"):
        assert run("queue", action, "NOSUCH")[0] == 1
        assert "no queued message NOSUCH" in capsys.readouterr().err
    assert run("queue", "retry")[0] == 2  # the id is required
    assert run("queue", "show", "../passwd")[0] == 1


def test_queue_asks_a_running_server(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    import json as _json

    from twisted_mail_stack.relay.control import ServerLock

    _enqueue(run.data, "A1", ["bob@remote.test"])
    lock = ServerLock(str(run.data / "queue"))
    assert lock.try_acquire()  # as a running server's relay holds it
    try:
        # Nobody applies the requests here: the command says so once its wait is over.
        assert run("queue", "bounce", "A1", "--wait", "0.2")[0] == 1
        assert "not answered in 0.2 s" in capsys.readouterr().err
        assert run("queue", "flush", "--wait", "0")[0] == 1
    finally:
        lock.release()
    control = run.data / "queue" / "control"
    requests = [_json.loads(p.read_text()) for p in sorted(control.glob("*.req"))]
    assert requests == [{"action": "bounce", "id": "A1"}, {"action": "flush", "id": None}]
    assert not (run.data / "queue" / "A1.state").exists()  # left to the server


def test_queue_reports_what_the_running_server_did(run: Run) -> None:
    import json as _json
    import threading

    from twisted_mail_stack.relay.control import ServerLock

    _enqueue(run.data, "A1", ["bob@remote.test"])
    control = run.data / "queue" / "control"
    lock = ServerLock(str(run.data / "queue"))
    assert lock.try_acquire()
    answers = iter(["deleted", "no such message"])

    def server() -> None:  # answers each request as ControlWatcher does
        for _ in range(2):
            while not (found := sorted(control.glob("*.req"))):
                threading.Event().wait(0.01)
            found[0].unlink()
            found[0].with_suffix(".done").write_text(_json.dumps({"outcome": next(answers)}))

    thread = threading.Thread(target=server)
    thread.start()
    try:
        assert run("queue", "delete", "A1") == (0, "delete A1: deleted (running server)\n")
        assert run("queue", "retry", "A1")[0] == 1  # the server found it gone
    finally:
        thread.join(10)
        lock.release()
    assert list(control.glob("*.done")) == []  # collected by the command
