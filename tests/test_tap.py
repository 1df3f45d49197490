"""twistd options: overrides, repeatable listeners, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.python import usage

from twisted_mail_stack.service import MailStack
from twisted_mail_stack.tap import Options, makeService


def parse(*argv: str) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


def test_no_options_gives_the_embedded_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = parse().config
    assert config.data_dir == "./mailstack-data"
    assert config.domains == ("localhost",)
    assert (tmp_path / "mailstack-data").is_dir()


def test_options_override_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('domains = ["a.org"]\n[listeners]\nsmtp = ["tcp:25"]\npop3 = ["tcp:110"]\n')
    config = parse(
        "--config", str(path),
        "--data", str(tmp_path / "d"),
        "--domain", "b.org", "--domain", "C.org",
        "--user", "x@b.org:pw1", "--user", "y@c.org:p:w",
        "--smtp", "tcp:2525:interface=127.0.0.1", "--smtp", "tcp6:2525:interface=\\:\\:1",
        "--pop3", "none",
        "--hostname", "mx.b.org",
    ).config  # fmt: skip
    assert config.domains == ("b.org", "c.org")
    assert config.users == ("x@b.org:pw1", "y@c.org:p:w")
    assert config.listeners.smtp == ("tcp:2525:interface=127.0.0.1", "tcp6:2525:interface=\\:\\:1")
    assert config.listeners.pop3 == ()
    assert config.listeners.imap == ("tcp:2143:interface=127.0.0.1",)
    assert config.hostname == "mx.b.org"
    assert config.data_dir == str(tmp_path / "d")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--imap", "tcp:port"], "listeners.imap[0]: bad endpoint"),
        (["--user", "nopassword@localhost"], "users[0]: must be ADDRESS:PASSWORD"),
        (["--domain", "a..b"], "domains"),
    ],
)
def test_bad_options_are_usage_errors(tmp_path: Path, argv: list[str], message: str) -> None:
    with pytest.raises(usage.UsageError) as info:
        parse("--data", str(tmp_path), *argv)
    assert message in str(info.value)
    assert str(info.value).startswith("configuration error:")


def test_unwritable_data_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(usage.UsageError, match="data_dir: .* is not a writable directory"):
        parse("--data", str(blocker / "sub"))


def test_make_service(tmp_path: Path) -> None:
    service = makeService(parse("--data", str(tmp_path)))
    assert isinstance(service, MailStack)
    assert service.config.data_dir == str(tmp_path)


def test_help_lists_every_listener() -> None:
    text = str(Options())
    for name in ("--smtp", "--submission", "--submissions", "--pop3", "--pop3s", "--imap", "--imaps",
                 "--domain", "--user", "--config", "--data"):  # fmt: skip
        assert name in text
