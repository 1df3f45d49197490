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


def test_check_config_reports_unreadable_tls(run: Run, capsys: pytest.CaptureFixture[str]) -> None:
    run.config.write_text(
        f'data_dir = "{run.data}"\n[tls]\ncert = "/nonexistent/c.pem"\nkey = "/nonexistent/k.pem"\n'
    )
    assert run("check-config")[0] == 2
    assert "tls: cannot read /nonexistent/c.pem" in capsys.readouterr().err
