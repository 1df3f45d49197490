"""Maildir++ names and message file names (pure functions of the Maildir backend's layout)."""

from __future__ import annotations

import unittest

from hypothesis import given
from hypothesis import strategies as st

from twisted_mail_stack.backends.maildir.layout import (
    account_dir,
    flags_of,
    folder_dirname,
    folder_name,
    parse_name,
    with_flags,
)
from twisted_mail_stack.errors import InvalidMailboxName
from twisted_mail_stack.names import canonical_name
from twisted_mail_stack.testing._folders import BAD_NAMES, GOOD_NAMES
from twisted_mail_stack.values import Flag

#: One valid component of a mailbox name: no "/", no control characters.
COMPONENT = st.text(
    st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="/"), min_size=1
)

#: Account names whose parts could reach outside the root, or are not addresses.
BAD_USERS = [
    "",
    "alice",
    "@example.com",
    "alice@",
    "..@example.com",
    ".@example.com",
    "alice@..",
    "alice@.",
    "../alice@example.com",
    "alice@../etc",
    "a/b@example.com",
    "alice@example.com/..",
    "al\x00ice@example.com",
    "alice@exa\x00mple.com",
    "al\nice@example.com",
    "alice@example\x7f.com",
    "alice@.hidden",
    "x" * 256 + "@example.com",
]


class AccountDirTests(unittest.TestCase):
    def test_domain_then_local(self) -> None:
        self.assertEqual(account_dir("/m", "alice@example.com"), "/m/example.com/alice")
        self.assertEqual(account_dir("/m", '"a@b"@example.com'), '/m/example.com/"a@b"')

    def test_refuses_names_that_could_escape(self) -> None:
        for user in BAD_USERS:
            with self.assertRaises(ValueError, msg=repr(user)):
                account_dir("/m", user)


class FolderNameTests(unittest.TestCase):
    def test_inbox_is_the_account_root(self) -> None:
        for spelling in ("INBOX", "inbox", "Inbox"):
            self.assertEqual(folder_dirname(spelling), "")

    def test_maildir_plus_plus(self) -> None:
        self.assertEqual(folder_dirname("Sent"), ".Sent")
        self.assertEqual(folder_dirname("a/b/c"), ".a.b.c")
        self.assertEqual(folder_dirname("inbox/x"), ".INBOX.x")
        self.assertEqual(folder_dirname("Entwürfe"), ".Entw&APw-rfe")  # as Dovecot writes it

    def test_dots_inside_a_name_are_encoded(self) -> None:
        self.assertEqual(folder_dirname("dot.ted"), ".dot&AC4-ted")
        self.assertEqual(folder_dirname(".hidden"), ".&AC4-hidden")
        self.assertEqual(folder_dirname("..double"), ".&AC4ALg-double")
        self.assertEqual(folder_name(".dot&AC4-ted"), "dot.ted")

    def test_valid_names_round_trip(self) -> None:
        for name in GOOD_NAMES:
            dirname = folder_dirname(name)
            self.assertTrue(dirname.startswith(".") and dirname not in (".", ".."), dirname)
            self.assertNotIn("/", dirname)
            self.assertEqual(folder_name(dirname), name)

    @given(st.lists(COMPONENT, min_size=1, max_size=4))
    def test_any_valid_name_round_trips_to_one_directory(self, parts: list[str]) -> None:
        try:
            name = canonical_name("/".join(parts))
            dirname = folder_dirname(name)
        except InvalidMailboxName:
            return  # ".", ".." or too long
        if name != "INBOX":
            self.assertNotIn("/", dirname)
            self.assertEqual(dirname.count("."), len(parts), "the only dots are separators")
            self.assertEqual(folder_name(dirname), name)

    def test_bad_names_refused(self) -> None:
        for name in BAD_NAMES:
            with self.assertRaises(InvalidMailboxName, msg=repr(name)):
                folder_dirname(name)

    def test_too_long(self) -> None:
        with self.assertRaises(InvalidMailboxName):
            folder_dirname("x" * 300)

    def test_foreign_directories_are_not_folders(self) -> None:
        for dirname in [
            ".",
            "..",
            "cur",
            ".INBOX",  # would alias INBOX
            ".inbox.x",  # would alias INBOX/x
            ".a..b",  # empty component
            ".a.",
            ".&AGE-",  # non-canonical encoding of "a"
            ".caf\u00e9",  # 8-bit name (not modified UTF-7)
            ".x&",
        ]:
            self.assertIsNone(folder_name(dirname), dirname)


class MessageNameTests(unittest.TestCase):
    def test_dovecot_name(self) -> None:
        name = parse_name("1700000000.M123P45Q6.host,S=1234:2,FS")
        self.assertEqual(name.key, "1700000000.M123P45Q6.host,S=1234")
        self.assertEqual((name.size, name.letters), (1234, "FS"))
        self.assertEqual(flags_of(name.letters), {Flag.FLAGGED, Flag.SEEN})

    def test_foreign_names(self) -> None:
        self.assertEqual(parse_name("1700000000.123_4.host").size, None)
        self.assertEqual(parse_name("1700000000.123_4.host").letters, "")
        # mbsync adds ",U=<n>" when it syncs; the key stays the same.
        self.assertEqual(
            parse_name("1.M2P3Q4.h,S=5,U=17:2,S").key, parse_name("1.M2P3Q4.h,S=5:2,").key
        )

    def test_all_letters(self) -> None:
        self.assertEqual(flags_of("DFPRST"), Flag.SYSTEM)
        self.assertEqual(flags_of("Pab"), frozenset())

    def test_with_flags_sorted_and_keeps_unknown_letters(self) -> None:
        path = with_flags("cur/k:2,Pa", frozenset({Flag.SEEN, Flag.DRAFT, "$Keyword"}))
        self.assertEqual(path, "cur/k:2,DPSa")

    def test_with_flags_moves_from_new_to_cur(self) -> None:
        self.assertEqual(with_flags("new/k", frozenset()), "new/k")
        self.assertEqual(with_flags("new/k", frozenset({"$Only"})), "new/k")
        self.assertEqual(with_flags("new/k", frozenset({Flag.ANSWERED})), "cur/k:2,R")
        self.assertEqual(with_flags("cur/k:2,RS", frozenset()), "cur/k:2,")
