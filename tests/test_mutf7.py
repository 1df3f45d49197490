"""Modified UTF-7 of RFC 3501 5.1.3."""

from __future__ import annotations

import unittest

from hypothesis import given
from hypothesis import strategies as st

from twisted_mail_stack.mutf7 import decode_mutf7, encode_mutf7

#: Unicode text without lone surrogates (which no UTF-16 can carry).
TEXT = st.text(st.characters(blacklist_categories=["Cs"]))


class ModifiedUTF7Tests(unittest.TestCase):
    def test_rfc_3501_example(self) -> None:
        name = "~peter/mail/\u53f0\u5317/\u65e5\u672c\u8a9e"
        self.assertEqual(encode_mutf7(name), "~peter/mail/&U,BTFw-/&ZeVnLIqe-")
        self.assertEqual(decode_mutf7("~peter/mail/&U,BTFw-/&ZeVnLIqe-"), name)

    def test_known_encodings(self) -> None:
        for text, encoded in [
            ("INBOX", "INBOX"),
            ("&", "&-"),
            ("a&b&&", "a&-b&-&-"),
            ("Entwürfe", "Entw&APw-rfe"),
            ("📧", "&2D3c5w-"),  # outside the BMP: a UTF-16 surrogate pair
            ("", ""),
            (" ~", " ~"),
        ]:
            self.assertEqual(encode_mutf7(text), encoded, text)
            self.assertEqual(decode_mutf7(encoded), text, encoded)

    def test_escape_chosen_printable_characters(self) -> None:
        self.assertEqual(encode_mutf7("a.b", escape="."), "a&AC4-b")
        self.assertEqual(encode_mutf7("é.", escape="."), "&AOkALg-")
        self.assertEqual(decode_mutf7("a&AC4-b", escaped="."), "a.b")
        self.assertEqual(decode_mutf7("a.b", escaped=""), "a.b")
        with self.assertRaises(ValueError):
            decode_mutf7("a.b", escaped=".")  # an escaped character must not appear bare

    def test_rejects_malformed(self) -> None:
        for bad in [
            "&",  # unterminated
            "&AOk",  # unterminated
            "&AO!-",  # not base64
            "&AOl-",  # non-zero padding bits
            "&A-",  # length 1 mod 4
            "&AA-",  # a lone byte
            "&AGE-",  # printable ASCII "a" in base64
            "&AC4-",  # "." in base64 without being asked for
            "&2D0-",  # a lone high surrogate
            "&3gA-",  # a lone low surrogate
            "é",  # 8-bit
            "a\x01b",  # control character
            "a\x7fb",
        ]:
            with self.assertRaises(ValueError, msg=repr(bad)):
                decode_mutf7(bad)

    def test_rejects_lone_surrogate_on_encode(self) -> None:
        with self.assertRaises(ValueError):
            encode_mutf7("a\ud800b")

    @given(TEXT)
    def test_round_trip(self, text: str) -> None:
        encoded = encode_mutf7(text)
        self.assertTrue(all(" " <= c <= "~" for c in encoded), encoded)
        self.assertEqual(decode_mutf7(encoded), text)

    @given(TEXT)
    def test_round_trip_with_escape(self, text: str) -> None:
        encoded = encode_mutf7(text, escape=".")
        self.assertNotIn(".", encoded)
        self.assertEqual(decode_mutf7(encoded, escaped="."), text)
