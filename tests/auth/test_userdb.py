"""The password file: names, round trip, permissions, atomic save, re-reading on change."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from twisted.logger import capturedLogs, formatEvent

from twisted_mail_stack.auth import _files
from twisted_mail_stack.auth.passwords import verify_password
from twisted_mail_stack.auth.userdb import UserDB, canonical_user
from twisted_mail_stack.errors import NoSuchUser, UserExists

pytestmark = pytest.mark.usefixtures("cheap_hashes")


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("alice@example.org", "alice@example.org"),
        ("Alice@Example.ORG.", "alice@example.org"),
        ("bj\u00f6rn@b\u00fccher.example", "bj\u00f6rn@xn--bcher-kva.example"),
        ("x@[192.0.2.1]", "x@[192.0.2.1]"),
    ],
)
def test_canonical_user(name: str, canonical: str) -> None:
    assert canonical_user(name) == canonical


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "empty user name"),
        ("alice", "no '@domain'"),
        ("@example.org", "empty local part"),
        ("alice@", "empty domain"),
        ("a:b@example.org", "contains ':'"),
        ("a b@example.org", "whitespace"),
        ("a\tb@example.org", "whitespace"),
        ("a\x00b@example.org", "control character"),
        ("a\x7fb@example.org", "control character"),
        ("a\u200bb@example.org", "control character"),  # zero-width space (Cf)
        ("a@b@example.org", "more than one '@'"),
        ("../x@example.org", "path separator"),
        ("..@example.org", "dot name"),
        ("x@exa/mple.org", "path separator"),
        ("x@a..b", "invalid domain"),
    ],
)
def test_bad_names_say_why(name: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        canonical_user(name)


def test_missing_file_is_empty(tmp_path: Path) -> None:
    db = UserDB.load(str(tmp_path / "passwd"))
    assert db.users() == []
    assert db.get_hash("a@example.org") is None


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    db = UserDB.load(str(path))
    assert db.add("Bob@Example.org", "b-pw") == "bob@example.org"
    db.add("alice@example.org", "a-pw")
    db.save()
    assert os.stat(path).st_mode & 0o777 == 0o600
    text = path.read_text()
    assert "b-pw" not in text and "a-pw" not in text
    again = UserDB.load(str(path))
    assert again.users() == ["bob@example.org", "alice@example.org"]  # file order
    encoded = again.get_hash("BOB@example.ORG")
    assert encoded is not None and verify_password("b-pw", encoded)
    assert "alice@example.org" in again and "carol@example.org" not in again

    again.set_password("alice@example.org", "new")
    again.remove("bob@example.org")
    again.save()
    final = UserDB.load(str(path))
    assert final.users() == ["alice@example.org"]
    encoded = final.get_hash("alice@example.org")
    assert encoded is not None and verify_password("new", encoded)


def test_refusals(tmp_path: Path) -> None:
    db = UserDB.load(str(tmp_path / "passwd"))
    db.add("a@example.org", "pw")
    with pytest.raises(UserExists, match="user a@example.org exists"):
        db.add("A@EXAMPLE.ORG", "pw")
    with pytest.raises(ValueError, match="empty password"):
        db.add("b@example.org", "")
    with pytest.raises(ValueError, match="empty password"):
        db.set_password("a@example.org", "")
    with pytest.raises(NoSuchUser):
        db.remove("nobody@example.org")
    with pytest.raises(NoSuchUser):
        db.set_password("nobody@example.org", "x")
    with pytest.raises(NoSuchUser):
        db.remove("not an address")
    with pytest.raises(ValueError, match="no file"):
        UserDB().save()


def test_comments_survive_and_bad_lines_are_named(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_text("# admins\nroot@example.org:$scrypt$x\n\n# others\nu@example.org:$h\n")
    db = UserDB.load(str(path))
    db.remove("root@example.org")
    db.add("v@example.org", "pw")
    db.save()
    lines = path.read_text().splitlines()
    assert lines[:4] == ["# admins", "", "# others", "u@example.org:$h"]
    assert lines[4].startswith("v@example.org:$scrypt$")

    path.write_text("ok@example.org:$h\nbroken line\n")
    with pytest.raises(ValueError, match=r"passwd:2: expected 'address:hash'"):
        UserDB.load(str(path))
    path.write_text("a@example.org:$h\nA@example.org:$h\n")
    with pytest.raises(ValueError, match=r"passwd:2: 'a@example.org' appears twice"):
        UserDB.load(str(path))


def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "passwd"
    db = UserDB.load(str(path))
    db.add("a@example.org", "pw")
    db.save()
    before = path.read_bytes()
    db.add("b@example.org", "pw")

    def crash(src: str, dst: str) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(_files.os, "replace", crash)
    with pytest.raises(OSError, match="disk on fire"):
        db.save()
    assert path.read_bytes() == before  # the old file, whole
    assert sorted(os.listdir(tmp_path)) == ["passwd"]  # no temporary left behind


def test_reloads_when_changed_on_disk(tmp_path: Path) -> None:
    path = str(tmp_path / "passwd")
    server = UserDB.load(path)
    assert server.users() == []
    admin = UserDB.load(path)  # `mailstack user add` in another process
    admin.add("new@example.org", "pw")
    admin.save()
    assert server.users() == ["new@example.org"]
    assert server.get_hash("new@example.org") is not None

    admin.remove("new@example.org")
    admin.save()
    assert server.get_hash("new@example.org") is None


def test_broken_rewrite_keeps_old_users(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    server = UserDB.load(str(path))
    server.add("a@example.org", "pw")
    server.save()
    path.write_text("garbage\n")
    assert server.users() == ["a@example.org"]


def test_unsaved_changes_are_not_lost_to_a_reload(tmp_path: Path) -> None:
    path = str(tmp_path / "passwd")
    db = UserDB.load(path)
    db.add("mine@example.org", "pw")
    other = UserDB.load(path)
    other.add("theirs@example.org", "pw")
    other.save()
    assert db.users() == ["mine@example.org"]


def test_in_memory_only() -> None:
    db = UserDB()
    db.add("a@example.org", "pw")
    assert db.users() == ["a@example.org"]


def test_loose_permissions_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_text("a@example.org:$h\n")
    path.chmod(0o644)
    with capturedLogs() as events:
        UserDB.load(str(path))
    assert any("looser permissions than 600" in formatEvent(e) for e in events)


def test_save_creates_the_directory(tmp_path: Path) -> None:
    db = UserDB.load(str(tmp_path / "new" / "passwd"))
    db.add("a@example.org", "pw")
    db.save()
    assert UserDB.load(str(tmp_path / "new" / "passwd")).users() == ["a@example.org"]
