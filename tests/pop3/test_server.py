"""The POP3 session on a fake transport: states, auth, the maildrop rules, limits."""

from __future__ import annotations

import base64

from twisted.internet.defer import fail, succeed
from twisted.trial import unittest

from twisted_mail_stack.backends.memory import MemoryMailbox
from twisted_mail_stack.errors import StorageError
from twisted_mail_stack.pop3 import server
from twisted_mail_stack.values import MessageExpunged

from .helpers import PASSWORD, REMOTE, USER, World, result

MESSAGE = b"From: a@example.org\r\nSubject: hi\r\n\r\nline 1\r\n.starts with a dot\r\nend\r\n"


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


class AuthorizationTests(unittest.TestCase):
    def setUp(self) -> None:
        self.world = World(login_failure_delay=2.0)
        self.world.deliver(MESSAGE)

    def test_greeting_and_capabilities(self) -> None:
        s = self.world.connect()
        self.assertEqual(s.greeting, b"+OK localhost POP3 server ready\r\n")
        caps = s.cmd("CAPA").split(b"\r\n")
        self.assertEqual(caps[0], b"+OK capability list follows")
        for cap in (b"TOP", b"UIDL", b"USER", b"SASL PLAIN LOGIN", b"PIPELINING", b"RESP-CODES",
                    b"AUTH-RESP-CODE", b"EXPIRE NEVER", b"IMPLEMENTATION twisted-mail-stack"):  # fmt: skip
            self.assertIn(cap, caps)
        self.assertNotIn(b"STLS", caps)  # no TLS settings in this factory
        self.assertEqual(caps[-2:], [b".", b""])

    def test_user_pass(self) -> None:
        s = self.world.connect()
        self.assertEqual(s.cmd(f"user {USER}"), b"+OK send PASS\r\n")
        self.assertEqual(
            s.cmd(b"PASS " + PASSWORD), b"+OK maildrop locked and ready, 1 messages\r\n"
        )
        caps = s.cmd("CAPA")
        self.assertNotIn(b"USER", caps)
        self.assertIn(b"UIDL", caps)

    def test_pass_needs_user(self) -> None:
        s = self.world.connect()
        self.assertEqual(s.cmd(b"PASS " + PASSWORD), b"-ERR send USER first\r\n")

    def test_plaintext_refused_from_the_network_without_tls(self) -> None:
        s = self.world.connect(REMOTE)
        caps = s.cmd("CAPA")
        self.assertNotIn(b"USER", caps)
        self.assertNotIn(b"SASL", caps)
        self.assertTrue(s.cmd(f"USER {USER}").startswith(b"-ERR [AUTH] plaintext"))
        self.assertTrue(
            s.cmd(b"AUTH PLAIN " + b64(b"\0" + USER.encode() + b"\0" + PASSWORD)).startswith(
                b"-ERR [AUTH]"
            )
        )
        self.assertEqual(s.cmd("AUTH"), b"+OK methods follow\r\n.\r\n")

    def test_bad_password_is_delayed_and_coded(self) -> None:
        s = self.world.connect()
        s.cmd(f"USER {USER}")
        self.assertEqual(s.cmd("PASS wrong"), b"")
        self.world.clock.advance(1.9)
        self.assertEqual(s.take(), b"")
        self.world.clock.advance(0.2)
        self.assertEqual(s.take(), b"-ERR [AUTH] invalid user name or password\r\n")
        s.login()  # the session goes on

    def test_commands_wait_behind_a_delayed_failure(self) -> None:
        s = self.world.connect()
        self.assertEqual(
            s.send(f"USER {USER}\r\nPASS wrong\r\nNOOP\r\n".encode()), b"+OK send PASS\r\n"
        )
        self.world.clock.advance(2)
        self.assertEqual(
            s.take(),
            b"-ERR [AUTH] invalid user name or password\r\n-ERR NOOP is not valid in this state\r\n",
        )

    def test_session_closed_after_three_failures(self) -> None:
        s = self.world.connect()
        for _ in range(3):
            s.cmd(f"USER {USER}")
            s.cmd("PASS wrong")
            self.world.clock.advance(2)
        self.assertTrue(s.closed)

    def test_client_blocked_after_too_many_failures(self) -> None:
        world = World(
            login_failure_delay=0.0, max_client_login_failures=4, login_failure_window=60.0
        )
        for _ in range(2):
            s = world.connect()
            for _ in range(2):
                s.cmd(f"USER {USER}")
                self.assertTrue(s.cmd("PASS wrong").startswith(b"-ERR [AUTH] invalid"))
            s.drop()
        s = world.connect()
        s.cmd(f"USER {USER}")
        self.assertEqual(
            s.cmd(b"PASS " + PASSWORD),
            b"-ERR [AUTH] too many failed logins from your address; try again later\r\n",
        )
        world.clock.advance(61)
        s.login()

    def test_connection_dropped_during_the_delay(self) -> None:
        s = self.world.connect()
        s.cmd(f"USER {USER}")
        s.cmd("PASS wrong")
        s.drop()
        self.world.clock.advance(5)
        self.assertEqual(s.take(), b"")
        self.assertEqual(self.world.clock.getDelayedCalls(), [])

    def test_auth_plain_initial_response(self) -> None:
        s = self.world.connect()
        reply = s.cmd(b"AUTH PLAIN " + b64(b"\0" + USER.encode() + b"\0" + PASSWORD))
        self.assertTrue(reply.startswith(b"+OK maildrop locked"), reply)

    def test_auth_plain_with_challenge(self) -> None:
        s = self.world.connect()
        self.assertEqual(s.cmd("AUTH plain"), b"+ \r\n")
        reply = s.cmd(b64(USER.encode() + b"\0" + USER.encode() + b"\0" + PASSWORD))
        self.assertTrue(reply.startswith(b"+OK"), reply)

    def test_auth_login(self) -> None:
        s = self.world.connect()
        self.assertEqual(s.cmd("AUTH LOGIN"), b"+ " + b64(b"Username:") + b"\r\n")
        self.assertEqual(s.cmd(b64(USER.encode())), b"+ " + b64(b"Password:") + b"\r\n")
        self.assertTrue(s.cmd(b64(PASSWORD)).startswith(b"+OK"))

    def test_auth_bad_password(self) -> None:
        s = self.world.connect()
        s.cmd(b"AUTH PLAIN " + b64(b"\0" + USER.encode() + b"\0nope"))
        self.world.clock.advance(2)
        self.assertEqual(s.take(), b"-ERR [AUTH] invalid user name or password\r\n")

    def test_auth_cancel_and_garbage(self) -> None:
        s = self.world.connect()
        s.cmd("AUTH LOGIN")
        self.assertEqual(s.cmd("*"), b"-ERR authentication cancelled\r\n")
        s.cmd("AUTH PLAIN")
        self.assertTrue(s.cmd("!!!not base64").startswith(b"-ERR "))
        self.assertEqual(s.cmd("AUTH CRAM-MD5"), b"-ERR unsupported authentication mechanism\r\n")
        self.assertEqual(s.cmd("AUTH"), b"+OK methods follow\r\nPLAIN\r\nLOGIN\r\n.\r\n")
        s.login()

    def test_transaction_commands_need_login(self) -> None:
        s = self.world.connect()
        for verb in ("STAT", "LIST", "RETR 1", "DELE 1", "NOOP", "RSET", "UIDL", "TOP 1 1"):
            self.assertTrue(s.cmd(verb).startswith(b"-ERR "), verb)
        s.login()
        self.assertTrue(s.cmd(f"USER {USER}").startswith(b"-ERR USER is not valid"))

    def test_quit_in_authorization(self) -> None:
        s = self.world.connect()
        self.assertEqual(s.cmd("QUIT"), b"+OK bye\r\n")
        self.assertTrue(s.closed)

    def test_stls_without_tls_settings(self) -> None:
        self.assertEqual(self.world.connect().cmd("STLS"), b"-ERR TLS is not available\r\n")


class MaildropTests(unittest.TestCase):
    def setUp(self) -> None:
        self.world = World()
        self.uids = [self.world.deliver(MESSAGE + b"n%d\r\n" % i) for i in range(3)]

    def test_second_login_gets_in_use(self) -> None:
        first = self.world.connect()
        first.login()
        second = self.world.connect()
        second.cmd(f"USER {USER}")
        self.assertEqual(
            second.cmd(b"PASS " + PASSWORD),
            b"-ERR [IN-USE] maildrop is in use by another session\r\n",
        )
        first.cmd("QUIT")
        second.login()

    def test_lock_released_when_the_client_vanishes(self) -> None:
        first = self.world.connect()
        first.login()
        first.drop()
        self.world.connect().login()

    def test_snapshot_taken_at_login(self) -> None:
        s = self.world.connect()
        s.login()
        self.world.deliver(b"Subject: late\r\n\r\nx\r\n")
        self.assertEqual(s.cmd("STAT"), b"+OK 3 %d\r\n" % (3 * (len(MESSAGE) + 4)))
        self.assertTrue(s.cmd("RETR 4").startswith(b"-ERR no such message"))
        s.cmd("QUIT")
        s = self.world.connect()
        s.login()
        self.assertTrue(s.cmd("STAT").startswith(b"+OK 4 "))

    def test_dele_only_marks_and_a_drop_deletes_nothing(self) -> None:
        s = self.world.connect()
        s.login()
        self.assertEqual(s.cmd("DELE 1"), b"+OK message 1 deleted\r\n")
        self.assertEqual(s.cmd("DELE 1"), b"-ERR message is deleted\r\n")
        self.assertEqual(s.cmd("RETR 1"), b"-ERR message is deleted\r\n")
        self.assertEqual(s.cmd("LIST 1"), b"-ERR message is deleted\r\n")
        self.assertEqual(s.cmd("UIDL").count(b"\r\n"), 4)  # status, 2 listings, terminator
        self.assertEqual(self.world.uids(), self.uids)
        s.drop()
        self.assertEqual(self.world.uids(), self.uids)

    def test_idle_timeout_deletes_nothing(self) -> None:
        s = self.world.connect()
        s.login()
        s.cmd("DELE 2")
        self.world.clock.advance(599)
        self.assertFalse(s.closed)
        self.world.clock.advance(2)
        self.assertTrue(s.transport.disconnecting)
        self.assertEqual(s.take(), b"")  # RFC 1939 3: closed without a response
        s.drop()
        self.assertEqual(self.world.uids(), self.uids)

    def test_dele_then_rset(self) -> None:
        s = self.world.connect()
        s.login()
        s.cmd("DELE 1")
        s.cmd("DELE 3")
        self.assertEqual(s.cmd("RSET"), b"+OK maildrop has 3 messages\r\n")
        self.assertTrue(s.cmd("RETR 1").startswith(b"+OK"))
        self.assertEqual(s.cmd("QUIT"), b"+OK bye, 0 messages deleted\r\n")
        self.assertEqual(self.world.uids(), self.uids)

    def test_quit_applies_deletions_and_others_see_expunges(self) -> None:
        watcher = self.world.inbox()
        changes: list[object] = []
        result(watcher.add_listener(changes.append))
        s = self.world.connect()
        s.login()
        s.cmd("DELE 2")
        self.assertEqual(changes, [])  # DELE touches nothing
        self.assertEqual(s.cmd("QUIT"), b"+OK bye, 1 messages deleted\r\n")
        self.assertTrue(s.closed)
        self.assertEqual(self.world.uids(), [self.uids[0], self.uids[2]])
        self.assertEqual([type(c) for c in changes], [MessageExpunged])
        self.assertEqual(changes[0].uid, self.uids[1])  # type: ignore[attr-defined]

    def test_uidl_stable_across_sessions(self) -> None:
        s = self.world.connect()
        s.login()
        first = s.cmd("UIDL")
        s.cmd("DELE 1")
        s.cmd("QUIT")
        s = self.world.connect()
        s.login()
        second = s.cmd("UIDL")
        self.assertEqual(first.split(b"\r\n")[2].split()[1], second.split(b"\r\n")[1].split()[1])
        self.assertEqual(s.cmd("UIDL 2"), b"+OK 2 " + second.split(b"\r\n")[2].split()[1] + b"\r\n")

    def test_retr_top_list(self) -> None:
        s = self.world.connect()
        s.login()
        body = MESSAGE + b"n0\r\n"
        stuffed = body.replace(b"\n.", b"\n..")
        self.assertEqual(s.cmd("LIST 1"), b"+OK 1 %d\r\n" % len(body))
        self.assertEqual(s.cmd("RETR 1"), b"+OK %d octets\r\n" % len(body) + stuffed + b".\r\n")
        self.assertEqual(
            s.cmd("TOP 1 0"), b"+OK\r\nFrom: a@example.org\r\nSubject: hi\r\n\r\n.\r\n"
        )
        self.assertEqual(
            s.cmd("TOP 1 2"),
            b"+OK\r\nFrom: a@example.org\r\nSubject: hi\r\n\r\nline 1\r\n..starts with a dot\r\n.\r\n",
        )
        self.assertEqual(
            s.cmd("LIST"),
            b"+OK scan listing follows\r\n"
            + b"".join(b"%d %d\r\n" % (i, len(body)) for i in (1, 2, 3))
            + b".\r\n",
        )
        self.assertTrue(s.cmd("TOP 1 x").startswith(b"-ERR"))
        self.assertTrue(s.cmd("RETR 0").startswith(b"-ERR"))

    def test_lf_message_sizes_match_what_is_sent(self) -> None:
        self.world.deliver(b"Subject: lf\n\n.a\nb")
        s = self.world.connect()
        s.login()
        listed = int(s.cmd("LIST 4").split()[2])
        retr = s.cmd("RETR 4")
        self.assertEqual(retr, b"+OK 22 octets\r\nSubject: lf\r\n\r\n..a\r\nb\r\n.\r\n")
        self.assertEqual(listed, len(b"Subject: lf\r\n\r\n.a\r\nb\r\n"))

    def test_size_learnt_by_retr_is_reused(self) -> None:
        s = self.world.connect()
        s.login()
        s.cmd("RETR 2")
        self.assertIn(2, s.protocol._drop.sizes)

    def test_sizes_learnt_by_retr_serve_later_sessions(self) -> None:
        s = self.world.connect()
        s.login()
        s.cmd("RETR 2")
        s.drop()  # learnt sizes outlive even a dropped session
        later = self.world.connect()
        later.login()
        mailbox = later.protocol._mailbox
        opened: list[int] = []
        self.patch(mailbox, "open_content", lambda uid: opened.append(uid) or fail(StorageError()))
        size = len(MESSAGE) + 4
        self.assertEqual(later.cmd("LIST 2"), b"+OK 2 %d\r\n" % size)
        self.assertEqual(opened, [])  # from the factory's cache, not by reading the message
        self.assertEqual(
            later.cmd("LIST 1"), b"-ERR [SYS/TEMP] the mail store failed; try again later\r\n"
        )
        self.assertEqual(opened, [self.uids[0]])

    def test_pipelined_commands_answer_in_order(self) -> None:
        s = self.world.connect()
        s.cmd(f"USER {USER}")
        out = s.send(b"PASS " + PASSWORD + b"\r\nSTAT\r\nDELE 1\r\nNOOP\r\nQUIT\r\n")
        lines = out.split(b"\r\n")
        self.assertTrue(lines[0].startswith(b"+OK maildrop"))
        self.assertTrue(lines[1].startswith(b"+OK 3 "))
        self.assertEqual(
            lines[2:], [b"+OK message 1 deleted", b"+OK", b"+OK bye, 1 messages deleted", b""]
        )

    def test_update_failure_is_sys_temp(self) -> None:
        self.patch(MemoryMailbox, "remove", lambda self, uids: fail(StorageError("disk on fire")))
        s = self.world.connect()
        s.login()
        s.cmd("DELE 1")
        self.assertEqual(s.cmd("QUIT"), b"-ERR [SYS/TEMP] some deleted messages not removed\r\n")
        self.assertTrue(s.closed)
        self.flushLoggedErrors()

    def test_backend_failure_at_login_is_sys_temp(self) -> None:
        self.patch(MemoryMailbox, "list_messages", lambda self: fail(StorageError("index lost")))
        _login_fails_as_sys_temp(self, self.world)


class LimitTests(unittest.TestCase):
    def test_long_lines(self) -> None:
        world = World(max_line_length=300)
        s = world.connect()
        self.assertEqual(s.cmd(b"NOOP " + b"x" * 400), b"-ERR line too long\r\n")
        self.assertEqual(s.send(b"y" * 500), b"-ERR line too long\r\n")
        self.assertEqual(s.send(b"z" * 500 + b"\r\nCAPA\r\n")[:4], b"+OK ")
        s.login()

    def test_too_many_errors(self) -> None:
        s = World(max_errors=3).connect()
        s.cmd("X")
        s.cmd("Y")
        self.assertFalse(s.closed)
        self.assertEqual(s.cmd("Z"), b"-ERR unknown command\r\n-ERR too many errors; closing\r\n")
        self.assertTrue(s.closed)

    def test_connections_per_client(self) -> None:
        world = World(max_connections_per_client=2)
        a, b = world.connect(), world.connect()
        c = world.connect()
        self.assertEqual(c.greeting, b"-ERR [SYS/TEMP] too many connections from your address\r\n")
        self.assertTrue(c.closed)
        c.drop()
        self.assertTrue(world.connect(REMOTE).greeting.startswith(b"+OK"))
        a.drop()
        self.assertTrue(world.connect().greeting.startswith(b"+OK"))
        del b

    def test_pipelined_flood_pauses_reading(self) -> None:
        world = World(login_failure_delay=1.0)
        s = world.connect()
        s.cmd(f"USER {USER}")
        s.send(b"PASS wrong\r\n" + b"CAPA\r\n" * 20000)
        self.assertEqual(s.transport.producerState, "paused")
        world.clock.advance(1)
        self.assertEqual(s.transport.producerState, "producing")


class CompactSnapshotTests(unittest.TestCase):
    """A mailbox with L{IMessageSizes}: the snapshot comes from it, not from list_messages."""

    def setUp(self) -> None:
        self.world = World()
        self.uids = [self.world.deliver(MESSAGE + b"n%d\r\n" % i) for i in range(3)]
        infos = result(self.world.inbox().list_messages())
        self.listing = ([i.uid for i in infos], [i.size for i in infos])
        self.calls = 0

        def sizes(mailbox: object, default: object = None) -> object:
            test = self

            class Sizes:
                def list_sizes(self) -> object:
                    test.calls += 1
                    return succeed(test.listing)

            return Sizes()

        self.patch(server, "IMessageSizes", sizes)
        self.unused = self.patch(
            MemoryMailbox, "list_messages", lambda self: fail(StorageError("not used"))
        )

    def test_session_works_from_the_compact_listing(self) -> None:
        s = self.world.connect()
        s.login()
        self.assertEqual(self.calls, 1)
        uidl = s.cmd("UIDL").split(b"\r\n")[1:-2]
        self.assertEqual([line.split()[0] for line in uidl], [b"1", b"2", b"3"])
        self.assertEqual(len({line.split()[1] for line in uidl}), 3)
        self.assertEqual(s.cmd("STAT"), b"+OK 3 %d\r\n" % (3 * (len(MESSAGE) + 4)))
        self.assertIn(b"n1\r\n", s.cmd("RETR 2"))
        s.cmd("DELE 2")
        self.assertEqual(s.cmd("QUIT"), b"+OK bye, 1 messages deleted\r\n")
        self.unused.restore()
        self.assertEqual(self.world.uids(), [self.uids[0], self.uids[2]])

    def test_failure_of_the_listing_is_sys_temp(self) -> None:
        self.patch(server, "IMessageSizes", lambda m, d=None: _Failing())
        _login_fails_as_sys_temp(self, self.world)


def _login_fails_as_sys_temp(test: unittest.TestCase, world: World) -> None:
    """PASS answers [SYS/TEMP] (RFC 3206) when the store fails, and gives the lock back."""
    s = world.connect()
    s.cmd(f"USER {USER}")
    test.assertEqual(
        s.cmd(b"PASS " + PASSWORD),
        b"-ERR [SYS/TEMP] the mail store failed; try again later\r\n",
    )
    result(world.inbox().lock())  # the lock was given back


class _Failing:
    def list_sizes(self) -> object:
        return fail(StorageError("index lost"))
