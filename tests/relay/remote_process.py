"""
A DNS server and a slow remote MX in a process of their own, for tests that kill the server:
C{python -m tests.relay.remote_process LOG}. It prints C{DNS <port> SMTP <port>} once both
listen; every message it accepts is appended to LOG as C{<time> <Message-ID>} just before its
250, after C{--delay} seconds. The zone: C{remote.test} MX C{mx.remote.test} A 127.0.0.1.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from typing import Any

from twisted.internet import defer, reactor, task
from twisted.internet.defer import Deferred
from twisted.names import dns

from twisted_mail_stack.interfaces import IMessageSource
from twisted_mail_stack.smtp.policy import SMTPPolicy
from twisted_mail_stack.values import Envelope, SMTPClientInfo, SMTPReply

from .dnsserver import DNSServer, Zone
from .smtpserver import RemoteMX


class SlowAccept(SMTPPolicy):
    def __init__(self, log: Any, delay: float) -> None:
        self.log = log
        self.delay = delay

    def data(
        self, client: SMTPClientInfo, envelope: Envelope, source: IMessageSource
    ) -> Deferred[SMTPReply | None]:
        with source.open() as f:
            found = re.search(rb"^Message-ID: *(<[^>]*>)", f.read(), re.M | re.I)
        ident = found.group(1).decode() if found else "<none>"

        def accept() -> None:
            self.log.write(f"{time.time():.6f} {ident}\n")
            self.log.flush()

        return task.deferLater(reactor, self.delay, accept)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("log")
    parser.add_argument("--delay", type=float, default=0.3)
    args = parser.parse_args()
    log = open(args.log, "a")
    zone = Zone(
        {
            "remote.test": [dns.Record_MX(10, b"mx.remote.test")],
            "mx.remote.test": [dns.Record_A("127.0.0.1")],
        }
    )
    server = DNSServer(reactor, zone)
    mx = RemoteMX(reactor, policies=[SlowAccept(log, args.delay)])
    print(f"DNS {server.port} SMTP {mx.address.port}", flush=True)
    defer.Deferred()  # run until killed
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    sys.exit(main())
