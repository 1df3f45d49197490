"""The SMTP grammar: bytes in, values or replies out."""

from __future__ import annotations

import pytest

from twisted_mail_stack.smtp._wire import (
    MailboxPath,
    SMTPSyntaxError,
    check_known,
    decode_xtext,
    encode_xtext,
    format_reply,
    parse_command,
    parse_params,
    parse_path,
    quote_local,
)


def test_command_verb_upper_cased_argument_kept() -> None:
    command = parse_command(b"mail FROM:<a@b.example> SIZE=10")
    assert command.verb == "MAIL"
    assert command.argument == "FROM:<a@b.example> SIZE=10"
    assert parse_command(b"QUIT").argument == ""


@pytest.mark.parametrize("line", [b"", b" MAIL", b"M\x00IL", b"MAIL\x01", b"\xff\xfe", b"12 x"])
def test_bad_command_lines(line: bytes) -> None:
    with pytest.raises(SMTPSyntaxError) as e:
        parse_command(line)
    assert e.value.code == 500


@pytest.mark.parametrize(
    "text, local, domain",
    [
        ("<a@b.example>", "a", "b.example"),
        ("<first.last+tag@Example.ORG>", "first.last+tag", "Example.ORG"),
        ('<"john doe"@example.org>', "john doe", "example.org"),
        ('<"a\\"b"@example.org>', 'a"b', "example.org"),
        ('<"user@remote"@local.example>', "user@remote", "local.example"),
        ("<@hop.example,@two.example:u@dest.example>", "u", "dest.example"),
        ("<u@[192.0.2.1]>", "u", "[192.0.2.1]"),
        ("<u@[IPv6:2001:db8::1]>", "u", "[IPv6:2001:db8::1]"),
        ("<u%remote.example@local.example>", "u%remote.example", "local.example"),
    ],
)
def test_paths(text: str, local: str, domain: str) -> None:
    path, rest = parse_path(text + " SIZE=1", utf8=False)
    assert path == MailboxPath(local, domain)
    assert rest == "SIZE=1"


@pytest.mark.parametrize(
    "text",
    [
        "a@b.example",  # no brackets
        "<a@b.example",
        "<a>",
        "<@b.example>",
        "<a@>",
        "<a..b@c.example>",
        "<.a@c.example>",
        "<a@-b.example>",
        "<a@b..example>",
        "<a@b.example.>",
        "<user@remote@local.example>",
        "<a@[300.1.1.1]>",
        "<a@[IPv6:zz]>",
        '<"unterminated@b.example>',
        "<a@b.example>junk",
        "<@bad_hop:a@b.example>",
        "<" + "x" * 65 + "@b.example>",
        "<a b@c.example>",
    ],
)
def test_bad_paths(text: str) -> None:
    with pytest.raises(SMTPSyntaxError) as e:
        parse_path(text, utf8=True)
    assert e.value.code == 501


def test_null_path_only_where_allowed() -> None:
    assert parse_path("<>", utf8=False, null_ok=True)[0].is_null
    with pytest.raises(SMTPSyntaxError):
        parse_path("<>", utf8=False)


def test_bare_postmaster() -> None:
    path, _ = parse_path("<Postmaster>", utf8=False, postmaster_ok=True)
    assert path == MailboxPath("Postmaster", "")


def test_utf8_addresses_need_smtputf8() -> None:
    path, _ = parse_path("<jösé@bücher.example>", utf8=True)
    assert path == MailboxPath("jösé", "bücher.example")
    with pytest.raises(SMTPSyntaxError) as e:
        parse_path("<jösé@bücher.example>", utf8=False)
    assert (e.value.code, e.value.enhanced) == (553, "5.6.7")


def test_quote_local_round_trips() -> None:
    assert quote_local("a.b") == "a.b"
    assert quote_local("john doe") == '"john doe"'
    assert quote_local('a"b\\') == '"a\\"b\\\\"'
    for local in ("john doe", 'a"b', "x@y"):
        assert parse_path(f"<{quote_local(local)}@e.example>", utf8=False)[0].local == local


def test_params() -> None:
    assert parse_params("SIZE=10 body=8bitmime  SMTPUTF8") == {
        "SIZE": "10",
        "BODY": "8bitmime",
        "SMTPUTF8": None,
    }
    assert parse_params("") == {}
    for bad in ("SIZE=1 size=2", "=x", "-A=1", "A=", "A=b=c", "A=\x7f"):
        with pytest.raises(SMTPSyntaxError):
            parse_params(bad)
    with pytest.raises(SMTPSyntaxError) as e:
        check_known({"FOO": None}, ["SIZE"])
    assert e.value.code == 555


def test_xtext() -> None:
    assert decode_xtext("rfc822+3Ba+2Bb@x.example") == "rfc822;a+b@x.example"
    assert encode_xtext("a+b=c d") == "a+2Bb+3Dc+20d"
    assert decode_xtext(encode_xtext("ünï code")) == "Ã¼nÃ¯ code"  # octets, as xtext carries
    for bad in ("a+", "a+4", "a+zz", "é"):
        with pytest.raises(SMTPSyntaxError):
            decode_xtext(bad)


def test_replies() -> None:
    assert format_reply(250, "2.1.0", "OK") == b"250 2.1.0 OK\r\n"
    assert format_reply(250, None, ["a", "b", "c"]) == b"250-a\r\n250-b\r\n250 c\r\n"
    assert format_reply(554, "5.7.1", "x\r\n250 injected") == (
        b"554-5.7.1 x\r\n554 5.7.1 250 injected\r\n"
    )
    assert format_reply(354, None, "go") == b"354 go\r\n"
