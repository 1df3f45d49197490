"""
Messages shaped like real mail, for the mime tests. The ones named IMAPTEST_* are the messages
of Dovecot's imaptest (github.com/dovecot/imaptest, src/tests/*.mbox, commit 9d78895), typed
here without their mbox "From " line and with CRLF line ends, since Dovecot serves CRLF.
"""

from __future__ import annotations


def crlf(text: str) -> bytes:
    """LF-typed text as CRLF bytes (UTF-8 where non-ASCII)."""
    return text.replace("\n", "\r\n").encode("utf-8")


# src/tests/fetch-envelope.mbox
IMAPTEST_ENVELOPE = [
    crlf(
        "Message-ID: <msg@id>\n"
        "In-Reply-To: <reply@to.id>\n"
        "Date: Thu, 15 Feb 2007 01:02:03 +0200\n"
        "Subject: subject header\n"
        "From: From Real <fromuser@fromdomain.org>\n"
        "To: To Real <touser@todomain.org>\n"
        "Cc: Cc Real <ccuser@ccdomain.org>\n"
        "Bcc: Bcc Real <bccuser@bccdomain.org>\n"
        "Sender: Sender Real <senderuser@senderdomain.org>\n"
        "Reply-To: ReplyTo Real <replytouser@replytodomain.org>\n"
        "\n"
        "body\n"
    ),
    crlf("Date: Thu, 15 Feb 2007 01:02:03 +0200\nFrom: user@domain\n\nbody\n"),
    crlf(
        "Date: Thu, 15 Feb 2007 01:02:03 +0200\n"
        "From: user@domain (Real Name)\n"
        "To: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;\n"
        "Cc: group:;, group2: (foo) ;\n"
        "\n"
        "body\n"
    ),
    crlf(
        "Date: Thu, 15 Feb 2007 01:02:03 +0200\n"
        "From: user@domain (Real Name)\n"
        "Sender: \n"
        "Reply-To: \n"
        "\n"
        "body\n"
    ),
    crlf("Date: Thu, 15 Feb 2007 01:02:03 +0200\nFrom: <@route:user@domain>\n\nbody\n"),
]

# src/tests/fetch-envelope: the expected ENVELOPEs of the messages above (messages 1, 2, 4, 5, 6).
IMAPTEST_ENVELOPE_EXPECTED = [
    b'("Thu, 15 Feb 2007 01:02:03 +0200" "subject header" (("From Real" NIL "fromuser" "fromdomain.org")) (("Sender Real" NIL "senderuser" "senderdomain.org")) (("ReplyTo Real" NIL "replytouser" "replytodomain.org")) (("To Real" NIL "touser" "todomain.org")) (("Cc Real" NIL "ccuser" "ccdomain.org")) (("Bcc Real" NIL "bccuser" "bccdomain.org")) "<reply@to.id>" "<msg@id>")',
    b'("Thu, 15 Feb 2007 01:02:03 +0200" NIL ((NIL NIL "user" "domain")) ((NIL NIL "user" "domain")) ((NIL NIL "user" "domain")) NIL NIL NIL NIL NIL)',
    b'("Thu, 15 Feb 2007 01:02:03 +0200" NIL (("Real Name" NIL "user" "domain")) (("Real Name" NIL "user" "domain")) (("Real Name" NIL "user" "domain")) ((NIL NIL "group" NIL)(NIL NIL "g1" "d1.org")(NIL NIL "g2" "d2.org")(NIL NIL NIL NIL)(NIL NIL "group2" NIL)(NIL NIL "g3" "d3.org")(NIL NIL NIL NIL)) ((NIL NIL "group" NIL)(NIL NIL NIL NIL)(NIL NIL "group2" NIL)(NIL NIL NIL NIL)) NIL NIL NIL)',
    b'("Thu, 15 Feb 2007 01:02:03 +0200" NIL (("Real Name" NIL "user" "domain")) (("Real Name" NIL "user" "domain")) (("Real Name" NIL "user" "domain")) NIL NIL NIL NIL NIL)',
    b'("Thu, 15 Feb 2007 01:02:03 +0200" NIL ((NIL "@route" "user" "domain")) ((NIL "@route" "user" "domain")) ((NIL "@route" "user" "domain")) NIL NIL NIL NIL NIL)',
]

# src/tests/fetch-bodystructure.mbox (a folded boundary parameter)
IMAPTEST_BODYSTRUCTURE = crlf(
    "From: user@domain.org\n"
    "Date: Sat, 24 Mar 2007 23:00:00 +0200\n"
    "Mime-Version: 1.0\n"
    'Content-Type: multipart/mixed; boundary="foo\n'
    ' bar"\n'
    "\n"
    "--foo bar\n"
    "Content-Type: text/x-myown; charset=us-ascii\n"
    "\n"
    "hello\n"
    "\n"
    "--foo bar--\n"
)
# src/tests/fetch-bodystructure (imaptest compares atoms and strings case-insensitively)
IMAPTEST_BODY_EXPECTED = b'(("TEXT" "x-MYOWN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 7 1) "MIXED")'

# src/tests/fetch-body.mbox
IMAPTEST_BODY = [
    crlf(
        "From: User1 <user1@domain.org>\n"
        "Date: Sat, 24 Mar 2007 23:00:00 +0200\n"
        "Subject: s1\n\nbody1\n"
    ),
    crlf(
        "From: User2 <user2@domain.org>\n"
        "Date: Sat, 24 Mar 2007 23:00:00 +0200\n"
        "Subject: s22\n\nbody22\n"
    ),
    crlf(
        "From: User3 <user3@domain.org>\n"
        "Date: Sat, 24 Mar 2007 23:00:00 +0200\n"
        "Subject: s333\n\nbody33\n"
    ),
]

# src/tests/fetch-body-mime.mbox
IMAPTEST_MIME = crlf(
    "From: user@domain.org\n"
    "Date: Sat, 24 Mar 2007 23:00:00 +0200\n"
    "Mime-Version: 1.0\n"
    'Content-Type: multipart/mixed; boundary="foo\n'
    ' bar"\n'
    "\n"
    "Root MIME prologue\n"
    "\n"
    "--foo bar\n"
    "Content-Type: text/x-myown; charset=us-ascii\n"
    "\n"
    "hello\n"
    "\n"
    "--foo bar\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "From: sub@domain.org\n"
    "Date: Sun, 12 Aug 2012 12:34:56 +0300\n"
    "Subject: submsg\n"
    'Content-Type: multipart/alternative; boundary="sub1"\n'
    "\n"
    "Sub MIME prologue\n"
    "--sub1\n"
    "Content-Type: text/html\n"
    "\n"
    "<p>Hello world</p>\n"
    "\n"
    "--sub1\n"
    "Content-Type: text/plain\n"
    "\n"
    "Hello another world\n"
    "\n"
    "--sub1--\n"
    "Sub MIME epilogue\n"
    "\n"
    "--foo bar--\n"
    "Root MIME epilogue\n"
)

# src/tests/fetch-body-message-rfc822.mbox
IMAPTEST_RFC822 = crlf(
    "From: user@domain.org\n"
    "Date: Sat, 24 Mar 2007 23:00:00 +0200\n"
    "Mime-Version: 1.0\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "From: sub@domain.org\n"
    "Date: Sun, 12 Aug 2012 12:34:56 +0300\n"
    "Subject: submsg\n"
    "\n"
    "Hello world\n"
)

# src/tests/fetch-body-message-rfc822-mime.mbox (a digest: body parts default to message/rfc822)
IMAPTEST_DIGEST = crlf(
    "From: user@domain.org\n"
    "Date: Sat, 24 Mar 2007 23:00:00 +0200\n"
    "Mime-Version: 1.0\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "From: sub@domain.org\n"
    "Date: Sun, 12 Aug 2012 12:34:56 +0300\n"
    "Subject: submsg\n"
    'Content-Type: multipart/digest; boundary="foo"\n'
    "\n"
    "prologue\n"
    "\n"
    "--foo \n"
    "\n"
    "From: m1@example.com\n"
    "Subject: m1\n"
    "\n"
    "m1 body\n"
    "\n"
    "--foo \n"
    "X-Mime: m2 header\n"
    "\n"
    "From: m2@example.com\n"
    "Subject: m2\n"
    "\n"
    "m2 body\n"
    "\n"
    "--foo--\n"
    "\n"
    "epilogue\n"
)

# src/tests/fetch-body-message-rfc822-x2.mbox
IMAPTEST_RFC822_X2 = crlf(
    "From: user@domain.org\n"
    "Date: Sat, 24 Mar 2007 23:00:00 +0200\n"
    "Mime-Version: 1.0\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "From: user2@domain.org\n"
    "Date: Fri, 23 Mar 2007 11:22:33 +0200\n"
    "Mime-Version: 1.0\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "From: sub@domain.org\n"
    "Date: Sun, 12 Aug 2012 12:34:56 +0300\n"
    "Subject: submsg\n"
    "\n"
    "Hello world\n"
)


def rfc3501_example() -> bytes:
    """
    A message matching the FETCH response of RFC 3501 section 8 (message 12): its header
    fields give that ENVELOPE; the body is 3028 octets in 92 lines.
    """
    header = crlf(
        "Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\n"
        "From: Terry Gray <gray@cac.washington.edu>\n"
        "Subject: IMAP4rev1 WG mtg summary and minutes\n"
        "To: imap@cac.washington.edu\n"
        "cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\n"
        "Message-Id: <B27397-0100000@cac.washington.edu>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\n"
        "Content-Transfer-Encoding: 7BIT\n"
        "\n"
    )
    line = b"x" * 30 + b"\r\n"  # 32 octets
    body = line * 91 + b"y" * (3028 - 91 * 32 - 2) + b"\r\n"
    assert len(body) == 3028 and body.count(b"\n") == 92
    return header + body


RFC3501_ENVELOPE = (
    b'("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev1 WG mtg summary and minutes" '
    b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
    b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
    b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
    b'((NIL NIL "imap" "cac.washington.edu")) '
    b'((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) NIL NIL '
    b'"<B27397-0100000@cac.washington.edu>")'
)
RFC3501_BODY = b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92)'

ALTERNATIVE = crlf(
    "From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <joerg@example.de>\n"
    'To: "Smith, Ann" <ann@example.com>, bob@example.com\n'
    "Subject: =?UTF-8?B?R3LDvMOfZQ==?= aus Berlin\n"
    "Date: Mon, 3 Jun 2024 09:15:00 +0200\n"
    "Message-ID: <alt-1@example.de>\n"
    "MIME-Version: 1.0\n"
    'Content-Type: multipart/alternative; boundary="=_alt"\n'
    "\n"
    "--=_alt\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "Gr=C3=BC=C3=9Fe aus Berlin, sch=C3=B6n=\n"
    "es Wetter.\n"
    "--=_alt\n"
    "Content-Type: text/html; charset=iso-8859-1\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "PHA+R3L832UgYXVzIEJlcmxpbjwvcD4K\n"
    "--=_alt--\n"
)

ATTACHMENT = crlf(
    "From: alice@example.org\n"
    "To: bob@example.net\n"
    "Subject: report\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/mixed; boundary=XYZ\n"
    "Content-Language: en\n"
    "\n"
    "This is a multi-part message in MIME format.\n"
    "--XYZ\n"
    "Content-Type: text/plain\n"
    "\n"
    "See the attached report.\n"
    "--XYZ\n"
    'Content-Type: application/pdf; name="report.pdf"\n'
    "Content-Transfer-Encoding: base64\n"
    'Content-Disposition: attachment; filename="report.pdf"; size=12\n'
    "Content-ID: <part2@example.org>\n"
    "Content-Description: The report\n"
    "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n"
    "Content-Language: en, de\n"
    "Content-Location: http://example.org/report.pdf\n"
    "\n"
    "JVBERi0xLjQKJcfs\n"
    "--XYZ--\n"
)

EIGHT_BIT = (
    'From: Jörg <joerg@example.de>\r\nSubject: Grüße "quoted" \\ back\r\n\r\nHallöchen\r\n'
).encode()
