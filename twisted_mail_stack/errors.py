"""
The project's error tree.

Backends raise the L{MailboxError} subclasses; protocols map them to replies
(IMAP response codes, POP3 RFC 3206 codes, SMTP enhanced status codes).
This module imports nothing from the project.
"""

from __future__ import annotations


class MailStackError(Exception):
    """Base of every error the project raises on purpose."""


class ConfigError(MailStackError):
    """A configuration value is wrong; the message names the key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


# -- the mailbox contract --------------------------------------------------------


class MailboxError(MailStackError):
    """Base of the errors of the mailbox contract."""


class NoSuchAccount(MailboxError):
    """The account does not exist in the store."""


class AccountExists(MailboxError):
    """L{IMailStore.create_account} for an account that already exists."""


class NoSuchMailbox(MailboxError):
    """The named folder does not exist (IMAP C{[NONEXISTENT]})."""


class MailboxExists(MailboxError):
    """Create or rename onto a folder that already exists (IMAP C{[ALREADYEXISTS]})."""


class InvalidMailboxName(MailboxError):
    """The name is empty, has an empty component, C{.} or C{..}, NUL or control characters."""


class MailboxNotEmpty(MailboxError):
    """Delete of a folder that still has child folders is refused by some backends (IMAP C{[HASCHILDREN]})."""


class CannotDeleteInbox(MailboxError):
    """INBOX can never be deleted (RFC 3501 6.3.4)."""


class NoSuchMessage(MailboxError):
    """A UID that the folder does not hold (never held, or expunged)."""


class MailboxInUse(MailboxError):
    """The exclusive maildrop lock is held by another session (POP3 C{[IN-USE]}, RFC 2449 8.1.2)."""


class StorageError(MailboxError):
    """
    The backend could not do the work: disk full, I/O error, a corrupt index it could not
    rebuild. Temporary from the client's point of view (POP3 C{[SYS/TEMP]}, SMTP 451 4.3.0).
    """


# -- delivery ---------------------------------------------------------------------


class DeliveryError(MailStackError):
    """A delivery attempt failed; C{code} and C{enhanced} are the SMTP reply to give or that was given."""

    permanent = False

    def __init__(self, message: str, code: int = 451, enhanced: str = "4.3.0") -> None:
        super().__init__(message)
        self.code = code
        self.enhanced = enhanced


class TemporaryDeliveryError(DeliveryError):
    """Try again later (4xx)."""


class PermanentDeliveryError(DeliveryError):
    """Give up on this recipient (5xx)."""

    permanent = True

    def __init__(self, message: str, code: int = 550, enhanced: str = "5.0.0") -> None:
        super().__init__(message, code, enhanced)


class TemporaryRoutingError(TemporaryDeliveryError):
    """No route now, no remote server was asked: DNS SERVFAIL or timeout (4.4.3)."""

    def __init__(self, message: str, code: int = 451, enhanced: str = "4.4.3") -> None:
        super().__init__(message, code, enhanced)


class PermanentRoutingError(PermanentDeliveryError):
    """
    The domain has no mail route, no remote server was asked: NXDOMAIN (5.1.2), null MX
    (556 5.1.10, RFC 7505 4.2), no address for any host (5.4.4), a loop to ourselves (5.4.6).
    """


# -- auth ---------------------------------------------------------------------------


class PlaintextRefused(MailStackError):
    """A cleartext password over an unprotected, non-loopback connection, refused by policy."""


class UserExists(MailStackError):
    """The password file already has this user."""


class NoSuchUser(MailStackError):
    """The password file has no such user."""


class NoSuchAlias(MailStackError):
    """The alias file has no such alias (or the alias lacks the named target)."""


class SASLError(MailStackError):
    """
    A client's SASL response cannot be decoded: bad base64, bad UTF-8, a malformed PLAIN
    message. Protocols answer with a syntax error (SMTP 501 5.5.2, IMAP BAD, POP3 -ERR).
    """
