"""Generated input never breaks a session: every line gets a reply or a clean close."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twisted_mail_stack.config import SMTPConfig

from .helpers import Harness

VERBS = [
    "EHLO",
    "HELO",
    "MAIL",
    "RCPT",
    "DATA",
    "BDAT",
    "RSET",
    "NOOP",
    "QUIT",
    "VRFY",
    "HELP",
    "AUTH",
    "STARTTLS",
    "EXPN",
    "mail from:",
    "RCPT TO:",
    "XYZ",
]
PIECES = st.sampled_from(
    [
        "<",
        ">",
        "@",
        '"',
        "\\",
        ":",
        "=",
        " ",
        "FROM:",
        "TO:",
        "SIZE=",
        "BODY=8BITMIME",
        "SMTPUTF8",
        "NOTIFY=",
        "ORCPT=rfc822;",
        "ENVID=",
        "RET=",
        "+",
        "a",
        "alice@example.org",
        "x@far.example",
        "[1.2.3.4]",
        "[IPv6:::1]",
        "é",
        "\t",
        "LAST",
        "0",
        "99",
        "PLAIN",
        "LOGIN",
        "*",
        ".",
    ]
)
ARGUMENT = st.one_of(st.lists(PIECES, max_size=8).map("".join), st.text(max_size=30))
LINE = st.tuples(st.sampled_from(VERBS), ARGUMENT).map(
    lambda t: f"{t[0]} {t[1]}".encode("utf-8", "surrogatepass")
)
NOISE = st.binary(max_size=60)


def _replies(out: bytes) -> int:
    return sum(1 for line in out.split(b"\r\n") if len(line) >= 4 and line[3:4] == b" ")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(LINE, LINE, NOISE), min_size=1, max_size=25))
def test_sessions_survive_anything(lines: list[bytes]) -> None:
    h = Harness(config=SMTPConfig(max_errors=1000, auth_failure_delay=0))
    c = h.connect()
    c.read()
    for line in lines:
        out = c.send(line + b"\r\n")
        h.reactor.advance(0)
        out += c.read()
        if c.closed:
            break
        # Each command gets at least one reply unless it started a DATA/BDAT/AUTH body.
        from twisted_mail_stack.smtp.server import State

        state = c.session.state
        assert state in (State.COMMAND, State.DATA, State.BDAT, State.AUTH) or out, (line, out)
        if state is State.COMMAND and b"\n" not in line[:-1] and b"\r" not in line:
            assert _replies(out) >= 1, (line, out)
    # Finish whatever is open; the session must still answer.
    c.send(b"\r\n.\r\n" + b"x" * 100 + b"\r\n")
    if not c.closed:
        c.session.connectionLost(None)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=3000), st.binary(max_size=200))
def test_bodies_never_break_the_session(body: bytes, tail: bytes) -> None:
    h = Harness()
    c = h.connect()
    c.hello()
    c.cmd("MAIL FROM:<a@far.example>")
    c.cmd("RCPT TO:<alice@example.org>")
    c.cmd("DATA")
    out = c.send(body + b"\r\n.\r\n")
    assert out[:3] in (b"250", b"550", b"500", b"552"), out
    stored = h.inbox("alice@example.org")
    assert len(stored) == (1 if out[:3] == b"250" else 0)
    c.send(tail.replace(b"\n", b"") + b"\r\n")  # any junk line gets its own reply
    assert c.cmd("NOOP").endswith(b"250 2.0.0 OK\r\n") or c.closed
