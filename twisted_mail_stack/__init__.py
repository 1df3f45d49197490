"""twisted-mail-stack: SMTP, POP3, IMAP4 and a relay over one mailbox contract, on Twisted."""

__version__ = "0.1.0"
