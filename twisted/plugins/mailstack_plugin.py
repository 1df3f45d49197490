"""The C{twistd mailstack} plugin: one lazy ServiceMaker, so twistd --help stays fast."""

from twisted.application.service import ServiceMaker

mailstack = ServiceMaker(
    "twisted-mail-stack",
    "twisted_mail_stack.tap",
    "SMTP, POP3 and IMAP4 mail server over one mailbox store",
    "mailstack",
)
