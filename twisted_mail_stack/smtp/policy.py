"""
A base for SMTP policy hooks (L{ISMTPPolicy}): every hook lets the session go on; override the
ones you need. Give instances to C{SMTPFactory(policies=...)} or set C{MailStack.smtp_policies}
before the stack starts.
"""

from __future__ import annotations

from collections.abc import Mapping

from twisted.internet import defer
from twisted.internet.defer import Deferred
from zope.interface import implementer

from ..interfaces import IMessageSource, ISMTPPolicy
from ..values import Envelope, SMTPClientInfo, SMTPReply

__all__ = ["SMTPPolicy"]


@implementer(ISMTPPolicy)
class SMTPPolicy:
    """Accepts everything; subclasses refuse by returning a Deferred of an L{SMTPReply}."""

    def connect(self, client: SMTPClientInfo) -> Deferred[SMTPReply | None]:
        return defer.succeed(None)

    def helo(self, client: SMTPClientInfo, name: str) -> Deferred[SMTPReply | None]:
        return defer.succeed(None)

    def mail(
        self, client: SMTPClientInfo, sender: str, params: Mapping[str, str | None]
    ) -> Deferred[SMTPReply | None]:
        return defer.succeed(None)

    def rcpt(
        self, client: SMTPClientInfo, recipient: str, params: Mapping[str, str | None]
    ) -> Deferred[SMTPReply | None]:
        return defer.succeed(None)

    def data(
        self, client: SMTPClientInfo, envelope: Envelope, source: IMessageSource
    ) -> Deferred[SMTPReply | None]:
        return defer.succeed(None)
