"""Real SMTP clients (smtplib, swaks, curl) against a running MailStack over loopback."""

from __future__ import annotations

import smtplib
import socket
import subprocess
from email.message import EmailMessage

from twisted.internet.threads import deferToThread

from ..tools import require_tool
from .smtp_server import PASSWORD, SMTPServerCase, strip_trace

BODY_8BIT = (
    b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: caf\xc3\xa9\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n\r\n8-bit body: \xc3\xa9\xc3\xa8 \xe2\x82\xac\r\n"
    b".leading dot\r\n..two dots\r\n"
)


class SmtplibTests(SMTPServerCase):
    async def test_plain_mx_delivery_byte_identical(self) -> None:
        def send() -> None:
            with smtplib.SMTP("127.0.0.1", self.port("smtp"), timeout=10) as client:
                client.ehlo("client.example")
                self.assertTrue(client.has_extn("8bitmime") and client.has_extn("pipelining"))
                client.sendmail(
                    "someone@remote.example",
                    ["alice@example.org"],
                    BODY_8BIT,
                    mail_options=["BODY=8BITMIME"],
                )

        await deferToThread(send)
        (stored,) = self.maildir("alice@example.org")
        self.assertEqual(strip_trace(stored), BODY_8BIT)
        self.assertTrue(
            stored.startswith(
                b"Return-Path: <someone@remote.example>\r\nReceived: from client.example ([127.0.0.1])\r\n"
            )
        )

    async def test_unknown_user_and_relay_refused(self) -> None:
        def send() -> tuple[object, object]:
            with smtplib.SMTP("127.0.0.1", self.port("smtp"), timeout=10) as client:
                client.ehlo("client.example")
                client.mail("x@remote.example")
                return client.rcpt("nobody@example.org"), client.rcpt("victim@remote.example")

        unknown, relay = await deferToThread(send)
        self.assertEqual(unknown, (550, b"5.1.1 <nobody@example.org>: no such user here"))
        self.assertEqual(relay, (554, b"5.7.1 <victim@remote.example>: relay access denied"))
        self.assertEqual(self.queued(), [])

    async def test_starttls_auth_submission_and_relay(self) -> None:
        def send() -> dict[str, tuple[int, bytes]]:
            with smtplib.SMTP("127.0.0.1", self.port("submission"), timeout=10) as client:
                client.ehlo("client.example")
                client.starttls(context=self.tls_context())
                client.ehlo("client.example")
                client.login("alice@example.org", PASSWORD)
                message = EmailMessage()
                message["From"] = "alice@example.org"
                message["Subject"] = "over TLS"
                message.set_content("hello\n")
                return client.send_message(
                    message, to_addrs=["bob@example.org", "carol@far.example"]
                )

        self.assertEqual(await deferToThread(send), {})
        (stored,) = self.maildir("bob@example.org")
        self.assertIn(b"with ESMTPSA id", stored)
        self.assertIn(b"(using TLSv1.", stored)
        self.assertIn(b"(authenticated as alice@example.org)", stored)
        (queued,) = self.queued()
        self.assertTrue(queued.read_bytes().startswith(b"Received: "))
        self.assertIn(b'"carol@far.example"', queued.with_suffix(".json").read_bytes())

    async def test_implicit_tls_submission(self) -> None:
        def send() -> None:
            with smtplib.SMTP_SSL(
                "127.0.0.1", self.port("submissions"), timeout=10, context=self.tls_context()
            ) as client:
                client.login("alice", PASSWORD)  # a bare name is in the first domain
                client.sendmail(
                    "alice@example.org", ["bob@example.org"], b"Subject: 465\r\n\r\nx\r\n"
                )

        await deferToThread(send)
        self.assertEqual(len(self.maildir("bob@example.org")), 1)

    async def test_submission_refuses_without_auth_and_foreign_sender(self) -> None:
        def send() -> tuple[object, object]:
            with smtplib.SMTP("127.0.0.1", self.port("submission"), timeout=10) as client:
                client.ehlo("client.example")
                before = client.mail("alice@example.org")
                client.login("alice@example.org", PASSWORD)
                return before, client.mail("bob@example.org")

        before, foreign = await deferToThread(send)
        self.assertEqual(before[0], 530)  # type: ignore[index]
        self.assertEqual(foreign[0], 553)  # type: ignore[index]

    async def test_bad_password(self) -> None:
        def send() -> int:
            with smtplib.SMTP("127.0.0.1", self.port("submission"), timeout=10) as client:
                client.ehlo("client.example")
                try:
                    client.login("alice@example.org", "wrong")
                except smtplib.SMTPAuthenticationError as e:
                    return e.smtp_code
                return 0

        self.assertEqual(await deferToThread(send), 535)

    async def test_smtputf8_address(self) -> None:
        self.stack.directory._aliases["jösé@example.org"] = ["alice@example.org"]  # type: ignore[union-attr]
        message = "From: ñ@bücher.example\r\nSubject: ü\r\n\r\nünïcödé\r\n".encode()

        def send() -> None:
            with smtplib.SMTP("127.0.0.1", self.port("smtp"), timeout=10) as client:
                client.ehlo("client.example")
                self.assertTrue(client.has_extn("smtputf8"))
                client.sendmail(
                    "ñ@bücher.example",
                    ["jösé@example.org"],
                    message,
                    mail_options=["SMTPUTF8", "BODY=8BITMIME"],
                )

        await deferToThread(send)
        (stored,) = self.maildir("alice@example.org")
        self.assertEqual(strip_trace(stored), message)
        self.assertIn(b"with UTF8SMTP id", stored)

    async def test_starttls_injection_is_discarded(self) -> None:
        """CVE-2011-0411: commands pipelined behind STARTTLS in the clear must not run."""

        def attack() -> bytes:
            raw = socket.create_connection(("127.0.0.1", self.port("smtp")), timeout=10)
            f = raw.makefile("rb")
            f.readline()
            raw.sendall(b"EHLO evil.example\r\n")
            while f.readline()[3:4] == b"-":
                pass
            raw.sendall(b"STARTTLS\r\nMAIL FROM:<evil@remote.example>\r\n")
            self.assertEqual(f.readline()[:3], b"220")
            tls = self.tls_context().wrap_socket(raw, server_hostname="localhost")
            g = tls.makefile("rb")
            tls.sendall(b"RCPT TO:<alice@example.org>\r\n")
            reply = g.readline()
            tls.close()
            return reply

        self.assertEqual((await deferToThread(attack))[:9], b"503 5.5.1")


class SwaksTests(SMTPServerCase):
    def swaks(self, *args: str) -> subprocess.CompletedProcess[str]:
        swaks = require_tool("swaks")
        return subprocess.run(
            [swaks, "--server", "127.0.0.1", "--helo", "client.example", *args],
            capture_output=True,
            text=True,
            timeout=30,
        )

    async def test_pipelining_attachment_tls_auth(self) -> None:
        attachment = self.data.parent / "attachment.bin"
        attachment.write_bytes(bytes(range(256)) * 64)
        result = await deferToThread(
            self.swaks,
            "--port",
            str(self.port("submission")),
            "--pipeline",
            "--tls",
            "--auth",
            "PLAIN",
            "--auth-user",
            "alice@example.org",
            "--auth-password",
            PASSWORD,
            "--from",
            "alice@example.org",
            "--to",
            "bob@example.org",
            "--attach",
            f"@{attachment}",
            "--header",
            "Subject: swaks",
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("250 2.0.0 OK queued as", result.stdout)
        (stored,) = self.maildir("bob@example.org")
        self.assertIn(b"Subject: swaks", stored)
        self.assertIn(b"with ESMTPSA id", stored)
        import base64

        encoded = base64.b64encode(bytes(range(256)) * 64)[:76]
        self.assertIn(encoded, stored)

    async def test_pipelined_mx_with_a_bad_recipient(self) -> None:
        result = await deferToThread(
            self.swaks,
            "--port",
            str(self.port("smtp")),
            "--pipeline",
            "--from",
            "x@remote.example",
            "--to",
            "alice@example.org,nobody@example.org",
        )
        self.assertIn("550 5.1.1", result.stdout)
        self.assertIn("250 2.0.0 OK queued as", result.stdout)
        self.assertEqual(len(self.maildir("alice@example.org")), 1)


class CurlTests(SMTPServerCase):
    async def test_curl_smtp_upload(self) -> None:
        curl = require_tool("curl")
        message = b"From: x@remote.example\r\nSubject: curl\r\n\r\nsent by curl\r\n"
        mail = self.data.parent / "curl.eml"
        mail.write_bytes(message)

        def send() -> subprocess.CompletedProcess[bytes]:
            return subprocess.run(
                [
                    curl,
                    "-sS",
                    "--max-time",
                    "20",
                    f"smtp://127.0.0.1:{self.port('smtp')}/client.example",
                    "--mail-from",
                    "x@remote.example",
                    "--mail-rcpt",
                    "alice@example.org",
                    "--upload-file",
                    str(mail),
                ],
                capture_output=True,
                timeout=30,
            )

        result = await deferToThread(send)
        self.assertEqual(result.returncode, 0, result.stderr)
        (stored,) = self.maildir("alice@example.org")
        self.assertEqual(strip_trace(stored), message)

    async def test_curl_submission_starttls_auth(self) -> None:
        curl = require_tool("curl")
        assert self.stack.tls is not None
        ca = self.data.parent / "ca.pem"
        ca.write_bytes(self.stack.tls.cert_pem)
        mail = self.data.parent / "curl2.eml"
        mail.write_bytes(b"Subject: curl tls\r\n\r\nhi\r\n")

        def send() -> subprocess.CompletedProcess[bytes]:
            return subprocess.run(
                [
                    curl,
                    "-sS",
                    "--max-time",
                    "20",
                    "--ssl-reqd",
                    "--cacert",
                    str(ca),
                    f"smtp://localhost:{self.port('submission')}/client.example",
                    "--user",
                    f"alice@example.org:{PASSWORD}",
                    "--mail-from",
                    "alice@example.org",
                    "--mail-rcpt",
                    "bob@example.org",
                    "--upload-file",
                    str(mail),
                ],
                capture_output=True,
                timeout=30,
            )

        result = await deferToThread(send)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(len(self.maildir("bob@example.org")), 1)
