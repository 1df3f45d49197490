"""The alias file: syntax, normalisation, add and remove, catch-alls."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from twisted_mail_stack.auth.aliases import AliasFile
from twisted_mail_stack.errors import NoSuchAlias


def test_load_and_query(tmp_path: Path) -> None:
    path = tmp_path / "aliases"
    path.write_text(
        "# team\nInfo@Example.ORG: alice@example.org, Bob@Remote.NET\n@example.net: alice@example.org\n"
    )
    aliases = AliasFile.load(str(path))
    assert aliases.aliases() == {"info@example.org": ["alice@example.org", "Bob@remote.net"]}
    assert aliases.catch_all() == {"example.net": "alice@example.org"}
    assert aliases.entries() == [
        ("info@example.org", ["alice@example.org", "Bob@remote.net"]),
        ("@example.net", ["alice@example.org"]),
    ]


def test_add_remove_save(tmp_path: Path) -> None:
    path = tmp_path / "aliases"
    aliases = AliasFile.load(str(path))
    assert aliases.add("info@example.org", ["alice@example.org", "bob@example.net"]) == (
        "info@example.org"
    )
    aliases.add("INFO@example.org", "carol@example.org")
    aliases.add("info@example.org", "Alice@example.org.")  # already there: no duplicate
    assert aliases.add("@Example.NET", "alice@example.org") == "@example.net"
    aliases.save()
    assert os.stat(path).st_mode & 0o777 == 0o644
    text = path.read_text()
    assert text.startswith("#")
    assert "info@example.org: alice@example.org, bob@example.net, carol@example.org\n" in text
    assert "@example.net: alice@example.org\n" in text

    again = AliasFile.load(str(path))
    again.remove("info@example.org", ["BOB@example.net"])
    assert again.aliases()["info@example.org"] == ["alice@example.org", "carol@example.org"]
    again.remove("info@example.org", ["alice@example.org", "carol@example.org"])
    assert "info@example.org" not in again.aliases()
    again.remove("@example.net")
    again.save()
    assert AliasFile.load(str(path)).entries() == []


def test_refusals(tmp_path: Path) -> None:
    aliases = AliasFile.load(str(tmp_path / "aliases"))
    aliases.add("@example.org", "a@example.org")
    with pytest.raises(ValueError, match="already has a target"):
        aliases.add("@example.org", "b@example.org")
    aliases.add("@example.org", "A@example.org")  # the same target again is fine
    with pytest.raises(ValueError, match="no targets"):
        aliases.add("x@example.org", [])
    with pytest.raises(ValueError, match="alias target 'nobody'"):
        aliases.add("x@example.org", "nobody")
    with pytest.raises(ValueError, match="contains ':'"):
        aliases.add("x@example.org", "a:b@example.org")
    with pytest.raises(NoSuchAlias):
        aliases.remove("x@example.org")
    aliases.add("x@example.org", "a@example.org")
    with pytest.raises(NoSuchAlias, match="has no target b@example.org"):
        aliases.remove("x@example.org", ["b@example.org"])


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("no colon here", "expected 'alias@domain: target"),
        ("x@example.org: a@example.org,,b@example.org", "empty alias target"),
        ("x@example.org:", "empty alias target"),
        ("@example.org: a@example.org, b@example.org", "exactly one target"),
        ("x y@example.org: a@example.org", "whitespace"),
    ],
)
def test_bad_lines(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "aliases"
    path.write_text(f"# ok\n{line}\n")
    with pytest.raises(ValueError, match=f"aliases:2: .*{problem}"):
        AliasFile.load(str(path))
