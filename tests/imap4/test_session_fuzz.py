"""Fuzzed command input never crashes the IMAP session: it answers or closes, and logs no failure."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.logger import globalLogPublisher

from .test_session import PASSWORD, USER, World

VERBS = [b"CAPABILITY", b"NOOP", b"LOGIN", b"AUTHENTICATE", b"SELECT", b"EXAMINE", b"CREATE",
         b"DELETE", b"RENAME", b"SUBSCRIBE", b"LIST", b"LSUB", b"STATUS", b"APPEND", b"IDLE",
         b"CHECK", b"CLOSE", b"UNSELECT", b"EXPUNGE", b"SEARCH", b"FETCH", b"STORE", b"COPY",
         b"MOVE", b"UID FETCH", b"UID STORE", b"UID EXPUNGE", b"ENABLE", b"ID", b"NAMESPACE",
         b"STARTTLS", b"DONE", b"LOGOUT"]  # fmt: skip
ARGS = [b"INBOX", b"1", b"1:*", b"*", b"0", b"4294967296", b"(FLAGS)", b"BODY[]", b"BODY.PEEK[1]",
        b"+FLAGS", b"(\\Seen)", b"Trash", b'""', b'"*"', b"%", b"(MESSAGES UNSEEN)", b"PLAIN",
        b"{3}", b"{3+}", b"{99999999}", b"~{2}", b"(CONDSTORE)", b"ALL", b"CONDSTORE", b"NIL",
        USER.encode(), PASSWORD, b"\x00", b"\xff", b"&-", b"a/../b", b"x" * 300]  # fmt: skip

#: Whole valid commands, so that the fuzz also reaches deep into each state.
VALID = [b"a CHECK", b"a NOOP", b"a SELECT INBOX", b"a EXAMINE INBOX", b"a FETCH 1:* (FLAGS UID)",
         b"a FETCH 1 (BODY[] ENVELOPE BODYSTRUCTURE)", b"a STORE 1:2 +FLAGS (\\Deleted)",
         b"a UID STORE 1:* -FLAGS.SILENT (\\Seen)", b"a EXPUNGE", b"a UID EXPUNGE 1:*",
         b"a IDLE", b"DONE", b"a SEARCH ALL", b"a SEARCH TEXT body", b"a UID MOVE 1 Trash",
         b"a COPY 1:* Trash", b"a APPEND INBOX {3+}\r\nabc", b"a CREATE x/y", b"a DELETE x/y",
         b"a RENAME x z", b'a LIST "" *', b'a LSUB "" %', b"a STATUS INBOX (MESSAGES UNSEEN)",
         b"a CLOSE", b"a UNSELECT", b"a ENABLE CONDSTORE", b"a AUTHENTICATE PLAIN",
         b"a LOGIN " + USER.encode() + b" " + PASSWORD]  # fmt: skip

lines = st.one_of(
    st.sampled_from(VALID),
    st.builds(
        lambda tag, verb, args: b" ".join([tag, verb, *args]),
        st.sampled_from([b"a", b"b1", b"*", b"+"]),
        st.sampled_from(VERBS),
        st.lists(st.one_of(st.sampled_from(ARGS), st.binary(max_size=12)), max_size=4),
    ),
    st.binary(max_size=40),
)
endings = st.sampled_from([b"\r\n", b"\n"])


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(lines, endings), max_size=25),
    st.lists(st.integers(1, 64), min_size=1, max_size=10),
    st.booleans(),
)
def test_fuzzed_sessions(
    commands: list[tuple[bytes, bytes]], sizes: list[int], login: bool
) -> None:
    failures: list[Any] = []

    def observe(event: dict[str, Any]) -> None:
        if "log_failure" in event:
            failures.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        world = World(login_failure_delay=0.5, max_line_length=1024, max_literal_size=4096)
        for i in range(3):
            world.deliver(b"Subject: %d\r\n\r\nbody\r\n" % i)
        session = world.connect()
        if login:
            session.select()
        data = b"".join(line + end for line, end in commands)
        pos, n = 0, 0
        while pos < len(data):  # arbitrary splits across reads
            step = sizes[n % len(sizes)]
            session.protocol.dataReceived(data[pos : pos + step])
            pos, n = pos + step, n + 1
            world.clock.advance(0.5)
        world.clock.advance(5)
        out = session.take()
        # Every complete command got some answer, unless the session closed or is still inside
        # a command (a literal announced with {n+} whose octets or final line never came).
        protocol = session.protocol
        if commands and not session.closed and data.count(b"\n") > 0:
            inside = protocol._framer.buffered > 0 or bool(protocol._framer._parts)
            assert out or protocol._busy or protocol._idle_tag is not None or inside
        assert not session.protocol._busy or session.closed
        # The session is still sane: a fresh command gets its tagged answer, or it closed.
        if not session.closed:
            session.send(b"\r\nDONE\r\n*\r\n")
            session.take()
            reply = session.send(b"zz NOOP\r\n")
            assert (
                b"zz OK" in reply
                or b"zz BAD" in reply
                or session.closed
                or (
                    b"+ " in reply  # still inside a literal or SASL exchange
                )
            ), reply
    finally:
        globalLogPublisher.removeObserver(observe)
    assert not failures, failures[0]
