"""Policy hooks: accept or refuse at connect, HELO, MAIL, RCPT and end of data."""

from __future__ import annotations

from collections.abc import Mapping

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.trial import unittest

from twisted_mail_stack.interfaces import IMessageSource, ISMTPPolicy
from twisted_mail_stack.smtp.policy import SMTPPolicy
from twisted_mail_stack.values import Envelope, SMTPClientInfo, SMTPReply

from .helpers import Harness


class Recorder(SMTPPolicy):
    def __init__(self, refuse: str = "", reply: SMTPReply | None = None) -> None:
        self.refuse = refuse
        self.reply = reply or SMTPReply(550, "5.7.1", f"refused at {refuse}")
        self.calls: list[tuple[str, object]] = []

    def _verdict(self, hook: str, arg: object) -> Deferred[SMTPReply | None]:
        self.calls.append((hook, arg))
        return defer.succeed(self.reply if hook == self.refuse else None)

    def connect(self, client: SMTPClientInfo) -> Deferred[SMTPReply | None]:
        return self._verdict("connect", client.host)

    def helo(self, client: SMTPClientInfo, name: str) -> Deferred[SMTPReply | None]:
        return self._verdict("helo", name)

    def mail(
        self, client: SMTPClientInfo, sender: str, params: Mapping[str, str | None]
    ) -> Deferred[SMTPReply | None]:
        return self._verdict("mail", sender)

    def rcpt(
        self, client: SMTPClientInfo, recipient: str, params: Mapping[str, str | None]
    ) -> Deferred[SMTPReply | None]:
        return self._verdict("rcpt", recipient)

    def data(
        self, client: SMTPClientInfo, envelope: Envelope, source: IMessageSource
    ) -> Deferred[SMTPReply | None]:
        with source.open() as f:
            return self._verdict("data", (envelope.sender, f.read()))


class PolicyTests(unittest.TestCase):
    def test_interface(self) -> None:
        self.assertTrue(ISMTPPolicy.providedBy(SMTPPolicy()))

    def test_every_hook_sees_the_session(self) -> None:
        policy = Recorder()
        h = Harness(policies=[policy])
        c = h.connect()
        c.hello()
        self.assertEqual(c.mail("a@remote.example", ["alice@example.org"], b"x\r\n")[:3], b"250")
        hooks = [name for name, _ in policy.calls]
        self.assertEqual(hooks, ["connect", "helo", "mail", "rcpt", "data"])
        sender, data = policy.calls[-1][1]  # type: ignore[misc]
        self.assertEqual(sender, "a@remote.example")
        self.assertTrue(data.startswith(b"Return-Path: ") and data.endswith(b"\r\nx\r\n"))

    def test_refusals(self) -> None:
        for hook, command in (
            ("helo", "EHLO c.example"),
            ("mail", "MAIL FROM:<a@remote.example>"),
            ("rcpt", "RCPT TO:<alice@example.org>"),
        ):
            h = Harness(policies=[Recorder(hook)])
            c = h.connect()
            c.read()
            if hook != "helo":
                c.cmd("EHLO c.example")
            if hook == "rcpt":
                c.cmd("MAIL FROM:<a@remote.example>")
            self.assertEqual(c.cmd(command), f"550 5.7.1 refused at {hook}\r\n".encode())
        h = Harness(policies=[Recorder("data")])
        c = h.connect()
        c.hello()
        self.assertEqual(
            c.mail("a@remote.example", ["alice@example.org"], b"x\r\n"),
            b"550 5.7.1 refused at data\r\n",
        )
        self.assertEqual(h.inbox("alice@example.org"), [])

    def test_connect_refusal_closes(self) -> None:
        c = Harness(policies=[Recorder("connect", SMTPReply(554, "5.7.1", "go away"))]).connect()
        self.assertEqual(c.read(), b"554 5.7.1 go away\r\n")
        self.assertTrue(c.closed)

    def test_accepting_reply_text(self) -> None:
        c = Harness(policies=[Recorder("helo", SMTPReply(250, "", "hello friend"))]).connect()
        c.read()
        self.assertTrue(c.cmd("EHLO c.example").startswith(b"250-hello friend\r\n"))

    def test_failing_policy_answers_451(self) -> None:
        class Broken(SMTPPolicy):
            def mail(
                self, client: SMTPClientInfo, sender: str, params: Mapping[str, str | None]
            ) -> Deferred[SMTPReply | None]:
                return defer.fail(RuntimeError("dns down"))

        c = Harness(policies=[Broken()]).connect()
        c.hello()
        self.assertEqual(c.cmd("MAIL FROM:<a@remote.example>")[:9], b"451 4.3.0")
        self.flushLoggedErrors(RuntimeError)

    def test_slow_policy_holds_pipelined_input(self) -> None:
        pending: Deferred[SMTPReply | None] = Deferred()

        class Slow(SMTPPolicy):
            def rcpt(
                self, client: SMTPClientInfo, recipient: str, params: Mapping[str, str | None]
            ) -> Deferred[SMTPReply | None]:
                return pending

        h = Harness(policies=[Slow()])
        c = h.connect()
        c.hello()
        out = c.send(
            b"MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\nx\r\n.\r\n"
        )
        self.assertEqual(out, b"250 2.1.0 OK\r\n")
        pending.callback(None)
        self.assertTrue(c.read().startswith(b"250 2.1.5 OK\r\n354 end data with <CR><LF>"))
