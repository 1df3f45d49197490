"""
Delivery status notifications (RFC 3464, RFC 3462 multipart/report; RFC 6533 for SMTPUTF8).

L{build_dsn} is pure apart from reading the original message from a file object (run it in a
thread for a spool file). It returns the bytes of the whole notification, CRLF line ends, or None
when nothing must be sent; the caller enqueues those bytes from the null sender C{<>} to the
original envelope sender, so a notification can never cause another one (RFC 3461 6.2, RFC 5321
4.5.5).

Which recipients appear (RFC 3461 4.1): a recipient whose NOTIFY was given appears only if it
names the event (C{failed} needs FAILURE, C{delayed} DELAY, C{delivered}/C{relayed}/C{expanded}
SUCCESS); without NOTIFY, failures and delays appear, successes do not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from email import policy as _policy
from email.generator import BytesGenerator
from email.message import EmailMessage, Message
from email.utils import format_datetime, make_msgid
from io import BytesIO
from typing import BinaryIO

from attrs import frozen

from ..values import Envelope

__all__ = ["RecipientReport", "build_dsn", "ACTIONS"]

#: RFC 3464 2.3.3 actions, and the NOTIFY keyword (RFC 3461 4.1) each needs.
ACTIONS = {
    "failed": "FAILURE",
    "delayed": "DELAY",
    "delivered": "SUCCESS",
    "relayed": "SUCCESS",
    "expanded": "SUCCESS",
}
#: Without NOTIFY (RFC 3461 4.1): failures and delays are reported.
_DEFAULT_NOTIFY = frozenset({"FAILURE", "DELAY"})
_CONTROLS = re.compile(r"[\x00-\x1f\x7f]+")
_STATUS = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")


@frozen
class RecipientReport:
    """
    What happened to one recipient (the per-recipient fields, RFC 3464 2.3).

    C{address} is the envelope recipient we tried (Final-Recipient); C{status} an RFC 3463 code
    such as C{"5.1.1"}; C{remote_mta} the host that answered (Remote-MTA), None if none did;
    C{diagnostic} the remote SMTP reply, code first (C{"550 5.1.1 no such user"}), written as
    C{Diagnostic-Code: smtp; ...}, or with C{diagnostic_type} C{"x-local"} a local reason such
    as a DNS failure. C{will_retry_until} is for C{delayed} only.
    """

    address: str
    action: str
    status: str
    remote_mta: str | None = None
    diagnostic: str | None = None
    diagnostic_type: str = "smtp"
    last_attempt: datetime | None = None
    will_retry_until: datetime | None = None

    def __attrs_post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}")
        if not _STATUS.fullmatch(self.status):
            raise ValueError(f"bad status {self.status!r}")


def build_dsn(
    envelope: Envelope,
    reports: Sequence[RecipientReport],
    original: BinaryIO,
    *,
    reporting_mta: str,
    arrival: datetime,
    now: datetime,
    queue_id: str | None = None,
    message_id: str | None = None,
    max_full: int = 10 << 20,
) -> bytes | None:
    """
    The notification for C{reports} about the message C{envelope} and C{original} (read from
    its start), or None if the sender is null or no reported recipient asked for it.

    The third part is the original's header (C{text/rfc822-headers}) or, when the envelope has
    RET=FULL and the message is at most C{max_full} bytes, the whole message
    (C{message/rfc822}). If C{envelope.smtputf8}, the RFC 6533 types are used instead
    (C{message/global-delivery-status}, C{message/global-headers}, C{message/global}) and the
    headers may be UTF-8. C{reporting_mta} is our host name (Reporting-MTA, the From domain).
    """
    if envelope.sender == "":
        return None
    notify = {r.address: r.notify for r in envelope.recipients}
    orcpt = {r.address: r.orcpt for r in envelope.recipients}
    wanted = [r for r in reports if ACTIONS[r.action] in (notify.get(r.address) or _DEFAULT_NOTIFY)]
    if not wanted:
        return None
    utf8 = envelope.smtputf8
    msg = EmailMessage(policy=_policy.SMTPUTF8 if utf8 else _policy.SMTP)
    failed = any(r.action == "failed" for r in wanted)
    msg["From"] = f"Mail Delivery System <MAILER-DAEMON@{reporting_mta}>"
    msg["To"] = envelope.sender
    msg["Subject"] = (
        "Undelivered Mail Returned to Sender" if failed else "Delayed Mail (still being retried)"
    )
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id or make_msgid(domain=reporting_mta)
    msg["Auto-Submitted"] = "auto-replied"  # RFC 3834 5
    msg.set_content(_human(wanted, reporting_mta, queue_id), cte="8bit" if utf8 else None)
    msg.make_mixed()
    msg.set_type("multipart/report")
    msg.set_param("report-type", "delivery-status")

    blocks = [_per_message(envelope, reporting_mta, arrival, queue_id)]
    blocks += [_per_recipient(r, orcpt.get(r.address), utf8) for r in wanted]
    msg.attach(_status_part(blocks, utf8))
    msg.attach(_original_part(envelope, original, utf8, max_full))
    out = BytesIO()
    _Generator(out, policy=msg.policy).flatten(msg)
    return out.getvalue()


class _Generator(BytesGenerator):
    """Writes the raw bytes of opaque C{message/*} parts (see L{_opaque}) back unchanged."""

    def _encode(self, s: str) -> bytes:  # the base class refuses non-ASCII here
        return s.encode("ascii", "surrogateescape")


def _clean(value: str, utf8: bool) -> str:
    """One header line: controls become spaces; without UTF-8, non-ASCII becomes C{?}."""
    value = _CONTROLS.sub(" ", value).strip()
    return value if utf8 else value.encode("ascii", "replace").decode("ascii")


def _address_type(address: str, utf8: bool) -> str:
    # RFC 6533 3: a non-ASCII address is of type utf-8 (only in a global DSN).
    return "utf-8" if utf8 and not address.isascii() else "rfc822"


def _per_message(
    envelope: Envelope, reporting_mta: str, arrival: datetime, queue_id: str | None
) -> list[tuple[str, str]]:
    fields = [("Reporting-MTA", f"dns; {reporting_mta}")]
    if queue_id:
        fields.append(("X-MailStack-Queue-ID", queue_id))
    if envelope.envid is not None:
        fields.append(("Original-Envelope-Id", envelope.envid))
    fields.append(("Arrival-Date", format_datetime(arrival)))
    return fields


def _per_recipient(r: RecipientReport, orcpt: str | None, utf8: bool) -> list[tuple[str, str]]:
    fields = []
    if orcpt:
        kind, _, address = orcpt.partition(";")
        fields.append(("Original-Recipient", f"{kind.strip()}; {address.strip()}"))
    fields += [
        ("Final-Recipient", f"{_address_type(r.address, utf8)}; {r.address}"),
        ("Action", r.action),
        ("Status", r.status),
    ]
    if r.remote_mta:
        fields.append(("Remote-MTA", f"dns; {r.remote_mta}"))
    if r.diagnostic:
        fields.append(("Diagnostic-Code", f"{r.diagnostic_type}; {r.diagnostic}"))
    if r.last_attempt is not None:
        fields.append(("Last-Attempt-Date", format_datetime(r.last_attempt)))
    if r.action == "delayed" and r.will_retry_until is not None:
        fields.append(("Will-Retry-Until", format_datetime(r.will_retry_until)))
    return fields


def _status_part(blocks: list[list[tuple[str, str]]], utf8: bool) -> EmailMessage:
    part = EmailMessage()
    if utf8:  # RFC 6533 6.1: a UTF-8 body the email package treats as opaque
        text = "\r\n\r\n".join(
            "\r\n".join(f"{k}: {_clean(v, True)}" for k, v in block) for block in blocks
        )
        part["Content-Type"] = "message/global-delivery-status"
        part["Content-Transfer-Encoding"] = "8bit"
        part.set_payload(_opaque(text.encode("utf-8") + b"\r\n"))
        return part
    part["Content-Type"] = "message/delivery-status"
    payload: list[Message | str] = []
    for block in blocks:
        m = Message()
        for k, v in block:
            m[k] = _clean(v, False)
        payload.append(m)
    part.set_payload(payload)
    return part


def _original_part(
    envelope: Envelope, original: BinaryIO, utf8: bool, max_full: int
) -> EmailMessage:
    part = EmailMessage()
    if envelope.ret == "FULL":
        data = original.read(max_full + 1)
        if len(data) <= max_full:
            part["Content-Type"] = "message/global" if utf8 else "message/rfc822"
            part["Content-Transfer-Encoding"] = "7bit" if data.isascii() else "8bit"
            part.set_payload(_opaque(_crlf(data)))
            return part
        original.seek(0)
    head = _crlf(_read_header(original))
    part["Content-Type"] = "message/global-headers" if utf8 else "text/rfc822-headers"
    part["Content-Transfer-Encoding"] = "7bit" if head.isascii() else "8bit"
    part.set_payload(_opaque(head))
    return part


def _read_header(f: BinaryIO, limit: int = 1 << 20) -> bytes:
    lines = []
    size = 0
    for line in f:
        if line in (b"\r\n", b"\n") or size > limit:
            break
        lines.append(line)
        size += len(line)
    return b"".join(lines)


def _crlf(data: bytes) -> bytes:
    return re.sub(rb"\r?\n", b"\r\n", data)


def _opaque(data: bytes) -> str:
    # Raw bytes as the email package holds them; L{_Generator} writes them back unchanged.
    return data.decode("ascii", "surrogateescape")


def _human(reports: Sequence[RecipientReport], reporting_mta: str, queue_id: str | None) -> str:
    lines = [f"This is the mail system at host {reporting_mta}.", ""]
    failed = [r for r in reports if r.action == "failed"]
    delayed = [r for r in reports if r.action == "delayed"]
    if failed:
        lines += ["Your message could not be delivered to the recipients below.", ""]
    if delayed:
        lines += ["Delivery to the recipients below is delayed; it is still being retried.", ""]
    for r in reports:
        why = r.diagnostic or f"status {r.status}"
        host = f" (host {r.remote_mta})" if r.remote_mta else ""
        lines.append(f"<{r.address}>{host}: {r.action}: {_clean(why, True)}")
    if queue_id:
        lines += ["", f"Queue id: {queue_id}"]
    return "\r\n".join(lines) + "\r\n"
