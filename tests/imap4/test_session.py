"""
The IMAP session bytes in, bytes out, over StringTransport, the memory store and a fake clock:
states, authentication, folders, APPEND, STORE, COPY, MOVE, EXPUNGE and their untagged updates.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from twisted.cred.portal import Portal
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from twisted_mail_stack.auth.realm import MailRealm
from twisted_mail_stack.backends.memory import MemoryMailStore
from twisted_mail_stack.config import IMAPConfig
from twisted_mail_stack.imap4.server import CAPABILITIES, IMAP4Factory, IMAP4Server
from twisted_mail_stack.interfaces import IMailbox
from twisted_mail_stack.sources import BytesSource
from twisted_mail_stack.values import INBOX, StoreMode

USER = "alice@example.org"
PASSWORD = b"secret"
LOOPBACK = IPv4Address("TCP", "127.0.0.1", 40000)
REMOTE = IPv4Address("TCP", "192.0.2.7", 40000)
MESSAGE = b"From: a@example.net\r\nSubject: hi\r\n\r\nhello\r\n"


def result(d: Any) -> Any:
    out: list[Any] = []
    d.addBoth(out.append)
    assert out, "Deferred has not fired"
    if isinstance(out[0], Failure):
        out[0].raiseException()
    return out[0]


class TLSStringTransport(StringTransport):
    """A StringTransport that records startTLS."""

    tls_started: Any = None

    def startTLS(self, options: Any) -> None:
        self.tls_started = options


class World:
    """A memory store with one user, a portal, a clock and a factory."""

    def __init__(self, tls: Any = None, **config: Any) -> None:
        self.store = MemoryMailStore()
        result(self.store.create_account(USER))
        checker = InMemoryUsernamePasswordDatabaseDontUse(**{USER: PASSWORD})
        self.portal = Portal(MailRealm(self.store), [checker])
        self.clock = Clock()
        self.factory = IMAP4Factory(
            self.portal, clock=self.clock, config=IMAPConfig(**config), tls=tls
        )

    def deliver(self, data: bytes = MESSAGE) -> int:
        infos = result(self.store.deliver([USER], BytesSource(data)))
        return int(infos[USER].uid)

    def open(self, name: str = INBOX) -> IMailbox:
        account = result(self.store.open_account(USER))
        return result(account.open_mailbox(name))  # type: ignore[no-any-return]

    def connect(self, peer: IPv4Address = LOOPBACK) -> Session:
        return Session(self.factory, peer)


class Session:
    def __init__(self, factory: IMAP4Factory, peer: IPv4Address) -> None:
        self.transport = TLSStringTransport(peerAddress=peer)
        self.protocol: IMAP4Server = factory.buildProtocol(peer)
        self.protocol.makeConnection(self.transport)
        self.greeting = self.take()
        self._n = 0

    def take(self) -> bytes:
        data = self.transport.value()
        self.transport.clear()
        return bytes(data)

    def send(self, data: bytes) -> bytes:
        self.protocol.dataReceived(data)
        return self.take()

    def raw(self, line: str | bytes) -> bytes:
        if isinstance(line, str):
            line = line.encode()
        return self.send(line + b"\r\n")

    def cmd(self, text: str | bytes, ok: bool = True) -> bytes:
        """Send C{tN text}; return everything answered; check the tagged status if C{ok}."""
        self._n += 1
        tag = b"t%d" % self._n
        raw = text.encode() if isinstance(text, str) else text
        out = self.send(tag + b" " + raw + b"\r\n")
        if ok:
            assert re.search(rb"(^|\r\n)" + tag + rb" OK ", out), out
        return out

    def login(self) -> bytes:
        return self.cmd(f'LOGIN {USER} "{PASSWORD.decode()}"')

    def login_reply(self) -> bytes:
        return self.cmd(f'LOGIN {USER} "{PASSWORD.decode()}"', ok=False)

    def select(self, name: str = "INBOX") -> bytes:
        self.login()
        return self.cmd(f"SELECT {name}")

    def drop(self) -> None:
        self.protocol.connectionLost(Failure(ConnectionDone()))

    @property
    def closed(self) -> bool:
        return bool(self.transport.disconnecting)


@pytest.fixture
def world() -> World:
    return World()


# -- greeting, capabilities, any state ------------------------------------------------------


def test_greeting_capabilities_from_loopback(world: World) -> None:
    s = world.connect()
    assert s.greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 ")
    assert b"AUTH=PLAIN" in s.greeting and b"LOGINDISABLED" not in s.greeting
    out = s.cmd("CAPABILITY")
    assert out.startswith(b"* CAPABILITY IMAP4rev1 ") and b"SASL-IR" in out


def test_logindisabled_from_remote_without_tls(world: World) -> None:
    s = world.connect(REMOTE)
    assert b"LOGINDISABLED" in s.greeting and b"AUTH=" not in s.greeting
    out = s.cmd(f"LOGIN {USER} secret", ok=False)
    assert out == b"t1 NO [PRIVACYREQUIRED] plaintext authentication is disabled\r\n"
    out = s.cmd("AUTHENTICATE PLAIN", ok=False)
    assert b"t2 NO [PRIVACYREQUIRED]" in out
    assert s.protocol.state.name == "NOT_AUTHENTICATED"


def test_starttls_discards_pipelined_plaintext() -> None:
    world = World(tls=_FakeTLS())
    s = world.connect(REMOTE)
    assert b"STARTTLS" in s.greeting
    out = s.send(b"a STARTTLS\r\nb LOGIN alice@example.org secret\r\n")
    assert out == b"a OK begin TLS negotiation now\r\n"
    assert s.transport.tls_started == "options"
    # After the handshake, plaintext login is allowed and STARTTLS no longer offered.
    caps = s.cmd("CAPABILITY")
    assert b"STARTTLS" not in caps and b"AUTH=PLAIN" in caps
    s.login()
    assert s.cmd("STARTTLS", ok=False).startswith(b"t3 BAD")


class _FakeTLS:
    def server_options(self) -> str:
        return "options"


def test_noop_logout_and_bad_commands(world: World) -> None:
    s = world.connect()
    assert s.cmd("NOOP") == b"t1 OK NOOP completed\r\n"
    assert s.raw("x FROB") == b"x BAD unknown command FROB\r\n"
    assert s.raw("") == b"* BAD missing or invalid tag\r\n"
    assert s.cmd("SELECT INBOX", ok=False) == b"t2 BAD SELECT is not valid in this state\r\n"
    assert s.cmd("LOGOUT") == b"* BYE logging out\r\nt3 OK LOGOUT completed\r\n"
    assert s.closed


def test_too_many_bad_commands_closes(world: World) -> None:
    s = world.connect()
    out = s.send(b"x FROB\r\n" * 25)
    assert out.count(b"BAD") == 20 and out.endswith(b"* BYE too many bad commands\r\n")
    assert s.closed


def test_id_enable_namespace(world: World) -> None:
    s = world.connect()
    assert s.cmd('ID ("name" "test")').startswith(b'* ID ("name" "twisted-mail-stack")')
    s.login()
    assert s.cmd("ENABLE CONDSTORE X-FOO").startswith(b"* ENABLED CONDSTORE\r\n")
    assert s.cmd("NAMESPACE").startswith(b'* NAMESPACE (("" "/")) NIL NIL\r\n')


# -- authentication ------------------------------------------------------------------------------


def test_login_ok_carries_capabilities(world: World) -> None:
    s = world.connect()
    out = s.login()
    assert out == b"t1 OK [CAPABILITY " + CAPABILITIES + b"] logged in\r\n"
    assert s.cmd("LOGIN a b", ok=False).startswith(b"t2 BAD LOGIN is not valid")


def test_failed_login_is_delayed_then_closed(world: World) -> None:
    s = world.connect()
    assert s.cmd(f"LOGIN {USER} wrong", ok=False) == b""
    world.clock.advance(1.9)
    assert s.take() == b""
    world.clock.advance(0.2)
    assert s.take() == b"t1 NO [AUTHENTICATIONFAILED] invalid user name or password\r\n"
    for _ in (2, 3):
        s.cmd(f"LOGIN {USER} wrong", ok=False)
        world.clock.advance(2)
    assert s.take().endswith(b"* BYE too many failed logins\r\n") and s.closed


def test_authenticate_plain_with_and_without_initial_response(world: World) -> None:
    token = base64.b64encode(b"\0" + USER.encode() + b"\0" + PASSWORD)
    s = world.connect()
    assert s.cmd(b"AUTHENTICATE PLAIN " + token).startswith(b"t1 OK [CAPABILITY")
    s = world.connect()
    assert s.cmd("AUTHENTICATE PLAIN", ok=False) == b"+ \r\n"
    assert s.send(token + b"\r\n").startswith(b"t1 OK [CAPABILITY")


def test_authenticate_login_and_cancel(world: World) -> None:
    s = world.connect()
    assert s.cmd("AUTHENTICATE LOGIN", ok=False) == b"+ VXNlcm5hbWU6\r\n"
    assert s.send(base64.b64encode(USER.encode()) + b"\r\n") == b"+ UGFzc3dvcmQ6\r\n"
    assert s.send(base64.b64encode(PASSWORD) + b"\r\n").startswith(b"t1 OK")
    s = world.connect()
    s.cmd("AUTHENTICATE PLAIN", ok=False)
    assert s.send(b"*\r\n") == b"t1 BAD AUTHENTICATE cancelled\r\n"
    assert s.cmd("AUTHENTICATE FOO", ok=False).startswith(b"t2 NO [CANNOT]")


# -- folders -----------------------------------------------------------------------------------


def test_list_default_folders_with_special_use_and_children(world: World) -> None:
    s = world.connect()
    s.login()
    s.cmd("CREATE Work/Projects")
    out = s.cmd('LIST "" "*"')
    assert b'* LIST (\\HasNoChildren) "/" INBOX\r\n' in out
    assert b'* LIST (\\HasNoChildren \\Sent) "/" Sent\r\n' in out
    assert b'* LIST (\\HasNoChildren \\Trash) "/" Trash\r\n' in out
    assert b'* LIST (\\HasNoChildren) "/" Work/Projects\r\n' in out
    assert re.search(rb'\* LIST \((\\Noselect )?\\HasChildren\) "/" Work\r\n', out)
    assert s.cmd('LIST "" ""').startswith(b'* LIST (\\Noselect) "/" ""\r\n')
    out = s.cmd('LIST "" "%"')
    assert b"Work/Projects" not in out and b'"/" Work\r\n' in out
    out = s.cmd('LIST "Work/" "%"')
    assert out.startswith(b'* LIST (\\HasNoChildren) "/" Work/Projects\r\n')
    out = s.cmd('LIST "" "inbox"')
    assert out.startswith(b'* LIST (\\HasNoChildren) "/" INBOX\r\n')


def test_list_extended_special_use_and_subscribed(world: World) -> None:
    s = world.connect()
    s.login()
    out = s.cmd('LIST (SPECIAL-USE) "" "*"')
    assert b"INBOX" not in out and out.count(b"* LIST") == 5
    s.cmd("CREATE a/b")
    s.cmd("SUBSCRIBE a/b")
    out = s.cmd('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"')
    assert b'"/" a ("CHILDINFO" ("SUBSCRIBED"))\r\n' in out
    out = s.cmd('LIST "" "*" RETURN (SUBSCRIBED)')
    assert b'* LIST (\\HasNoChildren \\Subscribed) "/" a/b\r\n' in out
    out = s.cmd('LSUB "" "%"')
    assert b'* LSUB (\\Noselect) "/" a\r\n' in out and b"a/b" not in out
    assert b'* LSUB () "/" a/b\r\n' in s.cmd('LSUB "" "*"')
    s.cmd("UNSUBSCRIBE a/b")
    assert b"a/b" not in s.cmd('LSUB "" "*"')


def test_create_delete_rename_errors(world: World) -> None:
    s = world.connect()
    s.login()
    s.cmd("CREATE Box")
    assert s.cmd("CREATE Box", ok=False) == b"t3 NO [ALREADYEXISTS] mailbox already exists\r\n"
    assert s.cmd("CREATE Folder (USE (\\Drafts))")
    assert b"\\Drafts" in s.cmd('LIST "" Folder')
    assert s.cmd("CREATE x (USE (\\Bogus))", ok=False).startswith(b"t6 NO [USEATTR]")
    assert s.cmd("RENAME Box Box2").endswith(b"OK RENAME completed\r\n")
    assert s.cmd("RENAME Box Box3", ok=False).startswith(b"t8 NO [NONEXISTENT]")
    assert s.cmd("DELETE Box2").endswith(b"OK DELETE completed\r\n")
    assert s.cmd("DELETE INBOX", ok=False).startswith(b"t10 NO [CANNOT]")
    assert s.cmd("SELECT Nope", ok=False).startswith(b"t11 NO [NONEXISTENT]")
    assert s.cmd('CREATE "a/../b"', ok=False).startswith(b"t12 NO [CANNOT]")
    assert s.cmd("RENAME INBOX Old").endswith(b"OK RENAME completed\r\n")


def test_rename_inbox_moves_messages_and_keeps_inbox(world: World) -> None:
    world.deliver()
    s = world.connect()
    s.login()
    s.cmd("RENAME INBOX Old")
    assert b"(MESSAGES 0)" in s.cmd("STATUS INBOX (MESSAGES)")
    assert b"(MESSAGES 1)" in s.cmd("STATUS Old (MESSAGES)")


def test_status(world: World) -> None:
    world.deliver()
    world.deliver()
    s = world.connect()
    s.login()
    out = s.cmd("STATUS INBOX (MESSAGES UIDNEXT UNSEEN RECENT HIGHESTMODSEQ UIDVALIDITY)")
    assert re.match(
        rb"\* STATUS INBOX \(MESSAGES 2 UIDNEXT 3 UNSEEN 2 RECENT 2 HIGHESTMODSEQ \d+ "
        rb"UIDVALIDITY \d+\)\r\n",
        out,
    ), out
    assert s.cmd("STATUS Nope (MESSAGES)", ok=False).startswith(b"t3 NO [NONEXISTENT]")


def test_mailbox_names_in_modified_utf7(world: World) -> None:
    s = world.connect()
    s.login()
    s.cmd("CREATE Entw&APw-rfe")
    assert b'"/" Entw&APw-rfe\r\n' in s.cmd('LIST "" "*"')
    names = [i.name for i in result(result(world.store.open_account(USER)).list_mailboxes())]
    assert "Entwürfe" in names


def test_names_not_in_modified_utf7_get_no_not_bad(world: World) -> None:
    # A well-formed astring that is not modified UTF-7 names no mailbox (imaptest "atoms").
    s = world.connect()
    s.login()
    out = s.cmd("SELECT !#$&'+,-.0123456789:;<=>?@^_`|[}", ok=False)
    assert re.fullmatch(rb"t2 NO \[(CANNOT|NONEXISTENT)\] [^\r\n\x00]*\r\n", out), out
    assert s.cmd("CREATE &Jjo", ok=False).startswith(b"t3 NO [CANNOT] ")
    out = s.cmd('LIST "" !#$&\'+,-.0123456789:;<=>?@^_`|[}%*')
    assert out == b"t4 OK LIST completed\r\n"
    assert not s.closed


# -- select and the selected state --------------------------------------------------------------


def test_select_responses(world: World) -> None:
    world.deliver()
    world.deliver()
    mailbox = world.open()
    result(mailbox.set_flags([1], ["\\Seen", "Work"], StoreMode.ADD))
    s = world.connect()
    out = s.select()
    lines = out.split(b"\r\n")
    assert lines[0] == b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft Work)"
    # Keywords defined here are permanent too (RFC 3501 7.1; imaptest warns otherwise).
    assert lines[1] == (
        b"* OK [PERMANENTFLAGS (\\Answered \\Deleted \\Draft \\Flagged \\Seen Work \\*)] "
        b"flags permitted"
    )
    assert lines[2:5] == [b"* 2 EXISTS", b"* 2 RECENT", b"* OK [UNSEEN 2] first unseen"]
    assert re.match(rb"\* OK \[UIDVALIDITY \d+\]", lines[5])
    assert lines[6] == b"* OK [UIDNEXT 3] predicted next UID"
    assert re.match(rb"\* OK \[HIGHESTMODSEQ \d+\]", lines[7])
    assert lines[8] == b"t2 OK [READ-WRITE] SELECT completed"
    # \Recent was claimed by this session: another one sees none.
    other = world.connect()
    other.login()
    assert b"* 0 RECENT" in other.cmd("EXAMINE INBOX")


def test_examine_is_read_only(world: World) -> None:
    world.deliver()
    s = world.connect()
    s.login()
    out = s.cmd("EXAMINE INBOX")
    assert b"[PERMANENTFLAGS ()]" in out and out.endswith(b"OK [READ-ONLY] EXAMINE completed\r\n")
    assert s.cmd("STORE 1 +FLAGS (\\Seen)", ok=False).startswith(b"t3 NO [READ-ONLY]")
    assert s.cmd("EXPUNGE", ok=False).startswith(b"t4 NO [READ-ONLY]")
    # A later SELECT claims the message as \Recent: EXAMINE did not.
    assert b"* 1 RECENT" in s.cmd("SELECT INBOX")


def test_examine_and_status_show_recent_without_claiming(world: World) -> None:
    # RFC 3501 2.3.2, 6.3.2, 6.3.10 (imaptest "select"): messages no session has selected yet
    # are \Recent for EXAMINE and STATUS, which claim none of them; SELECT then does.
    world.deliver()
    world.deliver()
    s = world.connect()
    s.login()
    out = s.cmd("EXAMINE INBOX")
    assert b"* 2 EXISTS\r\n* 2 RECENT\r\n" in out
    assert s.cmd("FETCH 1:2 FLAGS").count(b"FLAGS (\\Recent)") == 2
    s.cmd("CLOSE")
    assert b"* STATUS INBOX (RECENT 2)\r\n" in s.cmd("STATUS INBOX (RECENT)")
    assert b"* 2 RECENT\r\n" in s.cmd("SELECT INBOX")
    assert b"* STATUS INBOX (RECENT 2)\r\n" in s.cmd("STATUS INBOX (RECENT)")  # its own
    s.cmd("CLOSE")
    assert b"* STATUS INBOX (RECENT 0)\r\n" in s.cmd("STATUS INBOX (RECENT)")
    world.deliver()
    assert b"* STATUS INBOX (RECENT 1)\r\n" in s.cmd("STATUS INBOX (RECENT)")
    assert b"* 3 EXISTS\r\n* 1 RECENT\r\n" in s.cmd("EXAMINE INBOX")


def test_append_appenduid_and_trycreate(world: World) -> None:
    s = world.connect()
    s.login()
    out = s.send(b'a APPEND INBOX (\\Seen) "05-Jan-2024 10:00:00 +0100" {%d}\r\n' % len(MESSAGE))
    assert out == b"+ Ready for literal data\r\n"
    out = s.send(MESSAGE + b"\r\n")
    assert re.fullmatch(rb"a OK \[APPENDUID \d+ 1\] APPEND completed\r\n", out), out
    out = s.send(b"b APPEND Nope {%d+}\r\n" % len(MESSAGE) + MESSAGE + b"\r\n")
    assert out == b"b NO [TRYCREATE] no such mailbox\r\n"
    info = result(world.open().list_messages())[0]
    assert info.flags == {"\\Seen"} and info.internal_date.hour == 9


def test_oversized_literal_gets_toobig_and_session_continues() -> None:
    world = World(max_literal_size=2048)
    s = world.connect()
    s.login()
    assert s.raw("a APPEND INBOX {5000}") == b"a NO [TOOBIG] Literal too big\r\n"
    out = s.send(b"b APPEND INBOX {5000+}\r\n" + b"x" * 5000 + b"\r\n")
    assert out == b"b BAD [TOOBIG] Literal too big\r\n"
    assert s.cmd("NOOP") == b"t2 OK NOOP completed\r\n"


def test_preauth_literal_limits(world: World) -> None:
    s = world.connect()
    assert s.raw("a LOGIN {100000}").startswith(b"a BAD [TOOBIG]")
    out = s.send(b"b LOGIN {5000+}\r\n" + b"x" * 5000 + b" y\r\n")
    assert out == b"b BAD [TOOBIG] Literal too big\r\n"
    s.login()
    big = MESSAGE + b"x" * 5000 + b"\r\n"
    out = s.send(b"c APPEND INBOX {%d+}\r\n" % len(big) + big + b"\r\n")
    assert out.startswith(b"c OK [APPENDUID"), out


def test_append_to_selected_mailbox_reports_exists(world: World) -> None:
    s = world.connect()
    s.select()
    out = s.send(b"a APPEND INBOX {%d+}\r\n" % len(MESSAGE) + MESSAGE + b"\r\n")
    assert out.startswith(b"* 1 EXISTS\r\n* 1 RECENT\r\na OK [APPENDUID")


def test_store_flags_and_silent(world: World) -> None:
    for _ in range(3):
        world.deliver()
    s = world.connect()
    s.select()
    out = s.cmd("STORE 1:2 +FLAGS (\\Flagged)")
    assert out == (
        b"* 1 FETCH (FLAGS (\\Flagged \\Recent) UID 1)\r\n"
        b"* 2 FETCH (FLAGS (\\Flagged \\Recent) UID 2)\r\nt3 OK STORE completed\r\n"
    )
    assert s.cmd("STORE 1 -FLAGS.SILENT (\\Flagged)") == b"t4 OK STORE completed\r\n"
    out = s.cmd("UID STORE 3 FLAGS (\\Seen $Work)")
    # A keyword new to the mailbox is announced before it is shown (RFC 3501 7.2.6).
    assert out == (
        b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $Work)\r\n"
        b"* OK [PERMANENTFLAGS (\\Answered \\Deleted \\Draft \\Flagged \\Seen $Work \\*)] "
        b"flags permitted\r\n"
        b"* 3 FETCH (FLAGS (\\Seen \\Recent $Work) UID 3)\r\nt5 OK UID STORE completed\r\n"
    )
    assert s.cmd("STORE 4 +FLAGS (\\Seen)", ok=False) == (b"t6 BAD message number out of range\r\n")
    assert s.cmd("UID STORE 9 +FLAGS (\\Seen)") == b"t7 OK UID STORE completed\r\n"
    assert s.cmd("STORE 1 +FLAGS (\\Recent)", ok=False).startswith(b"t8 BAD")


def test_store_unchangedsince_modified(world: World) -> None:
    world.deliver()
    world.deliver()
    mailbox = world.open()
    infos = result(mailbox.list_messages())
    s = world.connect()
    s.select()
    result(mailbox.set_flags([2], ["\\Seen"], StoreMode.ADD))  # another session
    modseq = infos[0].modseq
    out = s.cmd(f"STORE 1:2 (UNCHANGEDSINCE {modseq}) +FLAGS.SILENT (\\Flagged)")
    assert re.fullmatch(
        rb"\* 1 FETCH \(UID 1 MODSEQ \(\d+\)\)\r\n"
        rb"\* 2 FETCH \(FLAGS \(\\Seen \\Recent\) UID 2 MODSEQ \(\d+\)\)\r\n"
        rb"t3 OK \[MODIFIED 2\] STORE completed\r\n",
        out,
    ), out


def test_changes_from_another_session_reported_at_command_end(world: World) -> None:
    for _ in range(3):
        world.deliver()
    s = world.connect()
    s.select()
    other = world.open()
    result(other.set_flags([1], ["\\Deleted"], StoreMode.ADD))
    result(other.set_flags([3], ["\\Flagged"], StoreMode.ADD))
    world.deliver()
    result(other.expunge())
    # FETCH, STORE and SEARCH must not carry EXPUNGE (RFC 3501 7.4.1).
    out = s.cmd("STORE 2 +FLAGS.SILENT (\\Seen)")
    assert out == (
        b"* 4 EXISTS\r\n* 3 FETCH (FLAGS (\\Flagged \\Recent) UID 3)\r\n* 4 RECENT\r\n"
        b"t3 OK STORE completed\r\n"
    )
    assert s.cmd("NOOP") == b"* 1 EXPUNGE\r\nt4 OK NOOP completed\r\n"
    # UID STORE may carry them.
    result(other.set_flags([2], ["\\Deleted"], StoreMode.ADD))
    result(other.expunge())
    assert s.cmd("UID STORE 3 +FLAGS.SILENT (\\Seen)").startswith(b"* 1 EXPUNGE\r\n")


def test_expunge_close_unselect(world: World) -> None:
    for _ in range(4):
        world.deliver()
    s = world.connect()
    s.select()
    s.cmd("STORE 2,4 +FLAGS.SILENT (\\Deleted)")
    out = s.cmd("EXPUNGE")
    assert out == b"* 2 EXPUNGE\r\n* 3 EXPUNGE\r\nt4 OK EXPUNGE completed\r\n"
    s.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
    s.cmd("UID STORE 3 +FLAGS.SILENT (\\Deleted)")
    assert s.cmd("UID EXPUNGE 3") == b"* 2 EXPUNGE\r\nt7 OK UID EXPUNGE completed\r\n"
    assert s.cmd("CLOSE") == b"t8 OK CLOSE completed\r\n"
    assert list(result(world.open().list_messages())) == []
    assert s.cmd("EXPUNGE", ok=False).startswith(b"t9 BAD")
    s.cmd("SELECT INBOX")
    assert s.cmd("UNSELECT") == b"t11 OK UNSELECT completed\r\n"


def test_copy_and_move(world: World) -> None:
    for _ in range(3):
        world.deliver()
    s = world.connect()
    s.select()
    out = s.cmd("COPY 1:2 Archive")
    assert re.fullmatch(rb"t3 OK \[COPYUID \d+ 1:2 1:2\] COPY completed\r\n", out), out
    assert s.cmd("COPY 1 Nope", ok=False) == b"t4 NO [TRYCREATE] no such mailbox\r\n"
    out = s.cmd("UID MOVE 2:3 Trash")
    assert re.fullmatch(
        rb"\* OK \[COPYUID \d+ 2:3 1:2\] moved\r\n\* 2 EXPUNGE\r\n\* 2 EXPUNGE\r\n"
        rb"t5 OK UID MOVE completed\r\n",
        out,
    ), out
    assert s.cmd("UID COPY 99 Trash") == b"t6 OK UID COPY completed: no messages\r\n"
    assert b"(MESSAGES 2)" in s.cmd("STATUS Trash (MESSAGES)")


def test_delete_selected_mailbox(world: World) -> None:
    s = world.connect()
    s.login()
    s.cmd("CREATE Box")
    s.cmd("SELECT Box")
    s.cmd("DELETE Box")
    assert s.protocol.state.name == "AUTHENTICATED"


# -- IDLE ------------------------------------------------------------------------------------------


def test_idle_pushes_delivery_and_expunge(world: World) -> None:
    world.deliver()
    s = world.connect()
    s.select()
    assert s.raw("i IDLE") == b"+ idling\r\n"
    world.deliver()
    assert s.take() == b""  # pushed on the next reactor turn
    world.clock.advance(0)
    assert s.take() == b"* 2 EXISTS\r\n* 2 RECENT\r\n"
    mailbox = world.open()
    result(mailbox.set_flags([1], ["\\Deleted"], StoreMode.ADD))
    result(mailbox.expunge())
    world.clock.advance(0)
    assert s.take() == b"* 1 EXPUNGE\r\n"
    assert s.raw("DONE") == b"i OK IDLE terminated\r\n"
    assert s.raw("j IDLE") == b"+ idling\r\n"
    assert s.raw("NOPE") == b"j BAD expected DONE\r\n"


def test_idle_timeout_is_long() -> None:
    world = World()
    s = world.connect()
    s.login()
    world.clock.advance(1799)
    assert not s.closed
    world.clock.advance(2)
    assert s.take() == b"* BYE autologout; idle for too long\r\n" and s.closed


def test_drop_during_session_closes_mailbox(world: World) -> None:
    s = world.connect()
    s.select()
    s.drop()
    assert s.protocol.selected is None


def test_fetch_and_search(world: World) -> None:
    world.deliver()
    world.deliver(b"Subject: other\r\n\r\nbody two\r\n")
    s = world.connect()
    s.select()
    out = s.cmd("FETCH 1:* (UID FLAGS)")
    assert out == (
        b"* 1 FETCH (UID 1 FLAGS (\\Recent))\r\n* 2 FETCH (UID 2 FLAGS (\\Recent))\r\n"
        b"t3 OK FETCH completed\r\n"
    )
    # A non-PEEK body fetch sets \Seen and reports FLAGS once, not again as an update.
    out = s.cmd("FETCH 1 BODY[]")
    assert out.count(b"FETCH (") == 1 and b"\\Seen" in out and MESSAGE in out
    assert s.cmd("NOOP") == b"t5 OK NOOP completed\r\n"
    assert s.cmd("SEARCH UNSEEN") == b"* SEARCH 2\r\nt6 OK SEARCH completed\r\n"
    assert s.cmd("UID SEARCH SUBJECT other") == b"* SEARCH 2\r\nt7 OK UID SEARCH completed\r\n"
    assert s.cmd("SEARCH RECENT") == b"* SEARCH 1 2\r\nt8 OK SEARCH completed\r\n"
    out = s.cmd("SEARCH MODSEQ 1")
    assert re.fullmatch(rb"\* SEARCH 1 2 \(MODSEQ \d+\)\r\nt9 OK SEARCH completed\r\n", out)
    # CONDSTORE is now on: flag updates carry MODSEQ.
    assert re.match(
        rb"\* 1 FETCH \(FLAGS \(\\Seen \\Recent\) UID 1 MODSEQ \(\d+\)\)",
        s.cmd("STORE 1 FLAGS (\\Seen)"),
    )
    assert s.cmd("FETCH 3 FLAGS", ok=False) == b"t11 BAD message number out of range\r\n"
    assert s.cmd("UID FETCH 3:* FLAGS").startswith(b"* 2 FETCH (")  # 3:* includes UID 2


class PausingTransport(TLSStringTransport):
    """Pauses its producer once more than C{limit} octets are waiting."""

    limit = 100_000

    def write(self, data: bytes) -> None:
        super().write(data)
        if self.producer is not None and len(self.value()) > self.limit:
            self.producer.pauseProducing()


def test_fetch_streams_under_flow_control(world: World) -> None:
    body = b"Subject: big\r\n\r\n" + b"0123456789abcdef\r\n" * 200_000  # 3.6 MB
    world.deliver(body)
    s = world.connect()
    s.transport = PausingTransport(peerAddress=LOOPBACK)
    s.protocol = world.factory.buildProtocol(LOOPBACK)
    s.protocol.makeConnection(s.transport)
    s.take()
    s.select()
    received = s.raw("f FETCH 1 BODY.PEEK[]")
    assert 0 < len(received) < len(body)  # stopped: waiting for the client to read
    for _ in range(200):
        producer = s.transport.producer
        if producer is None:
            break
        producer.resumeProducing()
        received += s.take()
    assert body in received and received.endswith(b"f OK FETCH completed\r\n")


def test_store_failure_midway_through_fetch_closes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from twisted_mail_stack.backends import memory
    from twisted_mail_stack.errors import StorageError

    world.deliver(b"Subject: big\r\n\r\n" + b"x" * 1_000_000)
    s = world.connect()
    s.select()
    real = memory._Content.read

    def read(self: Any, offset: int, length: int) -> Any:
        if offset > 0:
            raise StorageError("disk on fire")
        return real(self, offset, length)

    monkeypatch.setattr(memory._Content, "read", read)
    out = s.raw("f FETCH 1 BODY.PEEK[]")
    assert out.startswith(b"* 1 FETCH (BODY[] {") and b"f OK" not in out and b"f NO" not in out
    assert s.transport.disconnecting or s.protocol.closed
    # Before anything is written, a failure is a plain NO.
    s = world.connect()
    s.select()

    def broken(*args: Any) -> Any:
        raise StorageError("x")

    monkeypatch.setattr(memory.MemoryMailbox, "open_content", broken)
    out = s.raw("g FETCH 1 BODY.PEEK[]")
    assert out.endswith(b"g NO [UNAVAILABLE] the mail store failed; try again later\r\n"), out


def test_config_rules() -> None:
    from twisted_mail_stack.config import load_config
    from twisted_mail_stack.errors import ConfigError

    assert load_config(overrides={"imap.idle_timeout": 3600}).imap.idle_timeout == 3600
    with pytest.raises(ConfigError, match="imap.idle_timeout"):
        load_config(overrides={"imap.idle_timeout": 60})
    with pytest.raises(ConfigError, match="imap.max_errors"):
        load_config(overrides={"imap.max_errors": 0})


def test_connection_and_client_login_limits() -> None:
    world = World(max_connections_per_client=1, max_client_login_failures=2, login_failure_delay=0)
    s = world.connect()
    other = world.connect()
    assert other.greeting == b"* BYE [UNAVAILABLE] too many connections from your address\r\n"
    assert other.closed
    assert s.cmd(f"LOGIN {USER} wrong", ok=False).startswith(b"t1 NO [AUTHENTICATIONFAILED]")
    assert s.cmd(f"LOGIN {USER} wrong", ok=False).startswith(b"t2 NO [AUTHENTICATIONFAILED]")
    # Even the right password is refused while the address is blocked.
    assert s.login_reply().startswith(b"t3 NO [UNAVAILABLE]")
    world.clock.advance(601)
    assert s.login_reply().startswith(b"t4 OK")


def test_pipelined_commands_wait_and_reading_pauses(world: World) -> None:
    s = world.connect()
    out = s.send(f"a LOGIN {USER} wrong\r\n".encode() + b"n NOOP\r\n" * 200)
    assert out == b""  # the failed login waits; the NOOPs queue behind it
    assert s.transport.producerState == "paused"
    world.clock.advance(2)
    out = s.take()
    assert out.startswith(b"a NO [AUTHENTICATIONFAILED]") and out.count(b"n OK NOOP") == 200
    assert s.transport.producerState == "producing"


def test_keyword_from_another_session_announced_first(world: World) -> None:
    world.deliver()
    s = world.connect()
    s.select()
    result(world.open().set_flags([1], ["Urgent"], StoreMode.ADD))
    out = s.cmd("NOOP")
    assert out.startswith(b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft Urgent)\r\n")
    assert out.index(b"* FLAGS") < out.index(b"* 1 FETCH (FLAGS (\\Recent Urgent)")
    result(world.open().set_flags([1], ["Later"], StoreMode.ADD))
    out = s.cmd("FETCH 1 FLAGS")
    assert out == (
        b"* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft Later Urgent)\r\n"
        b"* OK [PERMANENTFLAGS (\\Answered \\Deleted \\Draft \\Flagged \\Seen Later Urgent \\*)] "
        b"flags permitted\r\n"
        b"* 1 FETCH (FLAGS (\\Recent Later Urgent))\r\nt4 OK FETCH completed\r\n"
    )  # FLAGS first, and the change is not told twice
