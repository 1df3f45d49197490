"""Session reuse against our own SMTP server on loopback: one connection, several messages."""

from __future__ import annotations

import time
from typing import Any

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial import unittest

from twisted_mail_stack.relay.client import SessionError
from twisted_mail_stack.relay.sessions import SessionPool

from .smtpserver import RemoteMX
from .test_client import BODY, outgoing


class SessionPoolTests(unittest.TestCase):
    timeout = 30

    def setUp(self) -> None:
        self.mx = RemoteMX(reactor)
        self.addCleanup(self.mx.stop)
        self.connections = 0
        build = self.mx.factory.buildProtocol

        def counting(addr: Any) -> Any:
            self.connections += 1
            return build(addr)

        self.mx.factory.buildProtocol = counting  # type: ignore[method-assign]

    def pool(self, **kw: Any) -> SessionPool:
        pool = SessionPool(reactor, helo_name="relay.example.org", **kw)
        self.addCleanup(pool.close)
        return pool

    async def until(self, condition: Any) -> None:
        deadline = time.monotonic() + 10
        while not condition() and time.monotonic() < deadline:
            await deferLater(reactor, 0.02)
        self.assertTrue(condition())

    async def test_messages_in_turn_share_one_connection(self) -> None:
        pool = self.pool(idle_timeout=30)
        port = self.mx.address.port
        for rcpt in ("bob@remote.test", "carol@remote.test", "nobody@remote.test"):
            await pool.deliver("127.0.0.1", port, [outgoing([rcpt])])
        await pool.deliver("127.0.0.1", port, [outgoing(["bob@remote.test"])])
        self.assertEqual((pool.opened, pool.reused, self.connections), (1, 3, 1))
        self.assertEqual(len(self.mx.inbox("bob@remote.test")), 2)
        self.assertTrue(self.mx.inbox("carol@remote.test")[0].endswith(BODY))
        # Another TLS policy is another session.
        with self.assertRaises(SessionError):
            await pool.deliver(
                "127.0.0.1", port, [outgoing(["bob@remote.test"])], tls_required=True
            )
        self.assertEqual(pool.opened, 2)
        self.assertEqual(pool.idle(), 1)

    async def test_idle_sessions_expire_and_close(self) -> None:
        pool = self.pool(idle_timeout=0.1)
        await pool.deliver("127.0.0.1", self.mx.address.port, [outgoing(["bob@remote.test"])])
        self.assertEqual(pool.idle(), 1)
        await self.until(lambda: pool.idle() == 0 and not pool._closing)
        await pool.deliver("127.0.0.1", self.mx.address.port, [outgoing(["bob@remote.test"])])
        self.assertEqual((pool.opened, pool.reused), (2, 0))

    async def test_a_closed_idle_session_is_replaced(self) -> None:
        pool = self.pool(idle_timeout=30)
        await pool.deliver("127.0.0.1", self.mx.address.port, [outgoing(["bob@remote.test"])])
        [[(client, _)]] = pool._idle.values()
        assert client.transport is not None
        client.transport.loseConnection()  # as when the server hangs up on an idle session
        await self.until(lambda: not client.alive)
        await pool.deliver("127.0.0.1", self.mx.address.port, [outgoing(["carol@remote.test"])])
        self.assertEqual((pool.opened, pool.reused), (2, 0))
        self.assertEqual(len(self.mx.inbox("carol@remote.test")), 1)

    async def test_no_reuse_and_close(self) -> None:
        pool = self.pool(idle_timeout=0)
        for _ in range(2):
            await pool.deliver("127.0.0.1", self.mx.address.port, [outgoing(["bob@remote.test"])])
        self.assertEqual((pool.opened, pool.reused, pool.idle()), (2, 0, 0))
        pool = self.pool(idle_timeout=30)
        await pool.deliver("127.0.0.1", self.mx.address.port, [outgoing(["bob@remote.test"])])
        [[(client, _)]] = pool._idle.values()
        await pool.close()
        self.assertEqual(pool.idle(), 0)
        await self.until(lambda: not client.alive)
