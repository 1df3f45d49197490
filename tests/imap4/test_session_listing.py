"""LIST and LSUB matching and attributes, as pure functions of the folder tree."""

from __future__ import annotations

from twisted_mail_stack.imap4._commands import List
from twisted_mail_stack.imap4.listing import list_responses, lsub_responses, pattern_matcher
from twisted_mail_stack.values import MailboxInfo, SpecialUse

TREE = [
    MailboxInfo("INBOX", subscribed=True),
    MailboxInfo("Gone", subscribed=True, selectable=False),  # a subscription a backend kept
    MailboxInfo("Sent", SpecialUse.SENT, subscribed=True),
    MailboxInfo("a", selectable=False),
    MailboxInfo("a/b", subscribed=True),
    MailboxInfo("a/b/c"),
]


def test_wildcards() -> None:
    assert pattern_matcher("", "*").fullmatch("a/b/c")
    assert not pattern_matcher("", "%").fullmatch("a/b")
    assert pattern_matcher("a/", "%").fullmatch("a/b")
    assert pattern_matcher("", "inBox").fullmatch("INBOX")
    assert pattern_matcher("", "Inbox/%").fullmatch("INBOX/x")
    assert not pattern_matcher("", "sent").fullmatch("Sent")  # other names keep their case
    assert pattern_matcher("", "a.b").fullmatch("a.b") and not pattern_matcher("", "a.b").fullmatch(
        "axb"
    )


def test_list_attributes_and_ghosts() -> None:
    out = b"".join(list_responses(TREE, List("", ("*",))))
    assert b"Gone" not in out
    assert b'* LIST (\\Noselect \\HasChildren) "/" a\r\n' in out
    assert b'* LIST (\\HasChildren) "/" a/b\r\n' in out
    assert b'* LIST (\\HasNoChildren \\Sent) "/" Sent\r\n' in out
    out = b"".join(list_responses(TREE, List("", ("*",), frozenset({"SUBSCRIBED"}), extended=True)))
    assert b'* LIST (\\NonExistent \\HasNoChildren \\Subscribed) "/" Gone\r\n' in out
    assert b"a/b/c" not in out and b'"/" a\r\n' not in out
    out = b"".join(list_responses(TREE, List("", ("INBOX", "a"), extended=True)))
    assert out.count(b"* LIST") == 2


def test_lsub_percent_rule() -> None:
    out = b"".join(lsub_responses(TREE, "", "%"))
    assert b'* LSUB (\\Noselect) "/" a\r\n' in out and b"a/b" not in out
    out = b"".join(lsub_responses(TREE, "", "*"))
    assert b'* LSUB () "/" a/b\r\n' in out and b'"/" a\r\n' not in out
    assert lsub_responses(TREE, "", "") == []


def test_childinfo_only_for_subscribed_children_the_patterns_miss() -> None:
    # RFC 5258 3.5; imaptest "listext": a matched subscribed child is listed itself instead.
    tree = [MailboxInfo("t", selectable=False), MailboxInfo("t/c", subscribed=True)]
    sel = frozenset({"SUBSCRIBED", "RECURSIVEMATCH"})
    out = b"".join(list_responses(tree, List("", ("t",), sel, extended=True)))
    assert out == b'* LIST (\\Noselect \\HasChildren) "/" t ("CHILDINFO" ("SUBSCRIBED"))\r\n'
    out = b"".join(list_responses(tree, List("", ("t", "t/c"), sel, extended=True)))
    assert out == b'* LIST (\\HasNoChildren \\Subscribed) "/" t/c\r\n'
    out = b"".join(list_responses(tree, List("", ("*",), sel, extended=True)))
    assert out == b'* LIST (\\HasNoChildren \\Subscribed) "/" t/c\r\n'
