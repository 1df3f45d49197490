"""
The Maildir backend: the server's embedded default store.

Standard Maildir++ trees (INBOX at the account root, folder C{a/b} in C{.a.b}, flags in the
C{:2,} suffix) that mutt, Dovecot and mbsync read and write alongside, plus one SQLite index per
folder for UIDs, keywords and modseqs. See L{layout}, L{index} and L{folder}.
"""

from .store import MaildirMailStore

__all__ = ["MaildirMailStore"]
