"""Directory.resolve: accounts, aliases, loops, catch-alls, postmaster, foreign domains."""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.logger import capturedLogs

from twisted_mail_stack.auth.aliases import AliasFile
from twisted_mail_stack.auth.directory import Directory
from twisted_mail_stack.auth.userdb import UserDB
from twisted_mail_stack.values import Address

pytestmark = pytest.mark.usefixtures("cheap_hashes")


def userdb(*users: str) -> UserDB:
    db = UserDB()
    for user in users:
        db.add(user, "pw")
    return db


@pytest.fixture
def directory() -> Directory:
    return Directory(
        ["Example.ORG", "example.net."],
        userdb("alice@example.org", "bob@example.org", "carol@example.net"),
        aliases={
            "info@example.org": ["alice@example.org", "Bob@Example.org"],
            "team@example.org": ["info@example.org", "carol@example.net", "Dave@Remote.COM"],
            "self@example.org": ["alice@example.org"],
            "alice@example.org": ["alice@example.org", "bob@example.org"],  # keeps a copy
            "loop1@example.org": ["loop2@example.org"],
            "loop2@example.org": ["loop1@example.org"],
            "partial@example.org": ["ghost@example.org", "carol@example.net"],
        },
        catch_all={"@example.net": "carol@example.net"},
    )


def test_local_domains(directory: Directory) -> None:
    assert directory.domains == ("example.org", "example.net")
    assert directory.default_domain == "example.org"
    for name in ("example.org", "EXAMPLE.org.", " example.net"):
        assert directory.is_local_domain(name)
    for name in ("example.com", "org", "", "a..b"):
        assert not directory.is_local_domain(name)


def test_accounts(directory: Directory) -> None:
    assert directory.resolve("Bob@EXAMPLE.ORG.") == ["bob@example.org"]
    assert directory.resolve(Address("BOB", "example.org")) == ["bob@example.org"]


def test_aliases_expand_recursively_without_duplicates(directory: Directory) -> None:
    assert directory.resolve("info@example.org") == ["alice@example.org", "bob@example.org"]
    assert directory.resolve("TEAM@example.org") == [
        "alice@example.org",
        "bob@example.org",
        "carol@example.net",
        "Dave@remote.com",  # remote targets come back as given, for the relay
    ]


def test_alias_naming_itself_keeps_a_copy(directory: Directory) -> None:
    assert directory.resolve("alice@example.org") == ["alice@example.org", "bob@example.org"]


def test_loops_and_dead_ends(directory: Directory) -> None:
    assert directory.resolve("loop1@example.org") is None
    assert directory.resolve("partial@example.org") == ["carol@example.net"]


def test_depth_limit() -> None:
    chain = {f"a{i}@example.org": [f"a{i + 1}@example.org"] for i in range(30)}
    chain["a30@example.org"] = ["end@example.org"]
    directory = Directory(["example.org"], userdb("end@example.org"), aliases=chain)
    assert directory.resolve("a25@example.org") == ["end@example.org"]
    assert directory.resolve("a0@example.org") is None


def test_unknown_and_foreign(directory: Directory) -> None:
    assert directory.resolve("nobody@example.org") is None
    assert directory.resolve("alice@example.com") is None  # not our domain, even if a user
    assert directory.resolve("not an address") is None
    assert directory.resolve("x@") is None


def test_catch_all_only_when_nothing_matches(directory: Directory) -> None:
    assert directory.resolve("anything@example.net") == ["carol@example.net"]
    assert directory.resolve("carol@EXAMPLE.net") == ["carol@example.net"]


@pytest.mark.parametrize("address", ["postmaster@example.org", "PostMaster@Example.ORG."])
def test_postmaster_falls_back_to_first_user(directory: Directory, address: str) -> None:
    assert directory.resolve(address) == ["alice@example.org"]


def test_postmaster_configured_and_alias() -> None:
    users = userdb("alice@example.org", "bob@example.org")
    configured = Directory(["example.org", "example.net"], users, postmaster="bob@example.org")
    assert configured.resolve("POSTMASTER@example.net") == ["bob@example.org"]
    aliased = Directory(
        ["example.org"],
        users,
        aliases={"postmaster@example.org": ["admin@remote.com"]},
        postmaster="bob@example.org",
    )
    assert aliased.resolve("Postmaster@example.org") == ["admin@remote.com"]
    dangling = Directory(["example.org"], users, postmaster="gone@example.org")
    assert dangling.resolve("postmaster@example.org") == ["alice@example.org"]
    assert Directory(["example.org"], UserDB()).resolve("postmaster@example.org") is None


def test_postmaster_beats_catch_all() -> None:
    directory = Directory(
        ["example.org"],
        userdb("alice@example.org", "bob@example.org"),
        catch_all={"example.org": "alice@example.org"},
        postmaster="bob@example.org",
    )
    assert directory.resolve("postmaster@example.org") == ["bob@example.org"]
    assert directory.resolve("other@example.org") == ["alice@example.org"]


def test_users_and_aliases_from_files_are_seen_live(tmp_path: Path) -> None:
    users = UserDB.load(str(tmp_path / "passwd"))
    aliases = AliasFile.load(str(tmp_path / "aliases"))
    directory = Directory(
        ["example.org"],
        users,
        aliases={"info@example.org": ["cfg@remote.com"]},
        alias_file=aliases,
    )
    assert directory.resolve("new@example.org") is None

    admin_users = UserDB.load(str(tmp_path / "passwd"))
    admin_users.add("new@example.org", "pw")
    admin_users.save()
    admin_aliases = AliasFile.load(str(tmp_path / "aliases"))
    admin_aliases.add("sales@example.org", "new@example.org")
    admin_aliases.add("info@example.org", "new@example.org")
    admin_aliases.add("@example.org", "new@example.org")
    admin_aliases.save()

    assert directory.resolve("new@example.org") == ["new@example.org"]
    assert directory.resolve("sales@example.org") == ["new@example.org"]
    assert directory.resolve("info@example.org") == ["cfg@remote.com"]  # the config wins
    assert directory.resolve("whoever@example.org") == ["new@example.org"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"aliases": {"bad alias@example.org": ["a@example.org"]}},
        {"aliases": {"x@example.org": ["no-domain"]}},
        {"catch_all": {"example.org": "a:b@example.org"}},
        {"postmaster": "nobody"},
    ],
)
def test_bad_configuration_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Directory(["example.org"], UserDB(), **kwargs)  # type: ignore[arg-type]


def test_diamond_is_not_a_loop() -> None:
    directory = Directory(
        ["example.org"],
        userdb("d@example.org"),
        aliases={
            "a@example.org": ["b@example.org", "c@example.org"],
            "b@example.org": ["list@example.org"],
            "c@example.org": ["list@example.org"],
            "list@example.org": ["d@example.org", "x@remote.com"],
        },
    )
    with capturedLogs() as events:
        assert directory.resolve("a@example.org") == ["d@example.org", "x@remote.com"]
    assert not events
