"""Fuzzed input never crashes a session: every line gets a reply, nothing is logged as a failure."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.logger import globalLogPublisher

from .helpers import PASSWORD, USER, World

VERBS = [b"USER", b"PASS", b"AUTH", b"STLS", b"CAPA", b"STAT", b"LIST", b"UIDL", b"RETR",
         b"TOP", b"DELE", b"NOOP", b"RSET", b"QUIT", b"APOP", b"user", b"XTND"]  # fmt: skip
ARGS = [b"1", b"2", b"0", b"-1", b"999999999999", b"PLAIN", b"LOGIN", b"*", b"=", USER.encode(),
        PASSWORD, b"AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==", b"\x00", b"\xff", b"x" * 300]  # fmt: skip

lines = st.one_of(
    st.builds(
        lambda verb, args: b" ".join([verb, *args]),
        st.sampled_from(VERBS),
        st.lists(st.one_of(st.sampled_from(ARGS), st.binary(max_size=12)), max_size=3),
    ),
    st.binary(max_size=40),
)
endings = st.sampled_from([b"\r\n", b"\n", b"\r\r\n"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
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
        world = World(login_failure_delay=0.5, max_line_length=256, max_errors=50)
        for i in range(3):
            world.deliver(b"Subject: %d\r\n\r\n.body\r\n" % i)
        before = world.uids()
        session = world.connect()
        if login:
            session.login()
        data = b"".join(line + end for line, end in commands)
        pos, n = 0, 0
        while pos < len(data):  # arbitrary splits across reads
            step = sizes[n % len(sizes)]
            session.protocol.dataReceived(data[pos : pos + step])
            pos, n = pos + step, n + 1
            world.clock.advance(0.5)
        world.clock.advance(5)
        out = session.take()
        quit_sent = any(line.strip().upper() == b"QUIT" for line, _ in commands)
        if not quit_sent:
            session.drop()
            assert world.uids() == before  # no UPDATE without QUIT
        for reply in out.split(b"\r\n"):
            assert b"Traceback" not in reply
        assert failures == []
    finally:
        globalLogPublisher.removeObserver(observe)
