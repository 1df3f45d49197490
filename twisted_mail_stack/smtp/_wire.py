"""
The SMTP command grammar without I/O: command lines in, typed values out; replies formatted.

Paths follow RFC 5321 4.1.2 (quoted local parts, address literals, source routes, which are
parsed and dropped as 4.1.1.3 and appendix C allow), widened by RFC 6531 3.3 to UTF-8 when the
client asked for SMTPUTF8. Every error is an L{SMTPSyntaxError} carrying the reply to give.
No Twisted here.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Mapping

from attrs import frozen

__all__ = [
    "SMTPSyntaxError",
    "Command",
    "MailboxPath",
    "parse_command",
    "parse_path",
    "parse_params",
    "check_known",
    "check_mail_params",
    "parse_rcpt_dsn",
    "quote_local",
    "decode_xtext",
    "encode_xtext",
    "format_reply",
]


class SMTPSyntaxError(Exception):
    """Input the grammar refuses; C{code}, C{enhanced} and the message are the reply."""

    def __init__(self, text: str, code: int = 501, enhanced: str = "5.5.4") -> None:
        super().__init__(text)
        self.text = text
        self.code = code
        self.enhanced = enhanced


@frozen
class Command:
    """One command line: the verb upper-cased and the rest after one space."""

    verb: str
    argument: str


@frozen
class MailboxPath:
    """
    A parsed path: C{local} exactly as sent (unquoted), C{domain} as sent (no normalising:
    the caller decides what a domain means). The null path C{<>} has both empty.
    """

    local: str
    domain: str

    @property
    def is_null(self) -> bool:
        return not self.local and not self.domain

    @property
    def is_literal(self) -> bool:
        return self.domain.startswith("[")

    def __str__(self) -> str:
        if self.is_null:
            return ""
        return f"{quote_local(self.local)}@{self.domain}"


_VERB = re.compile(r"[A-Za-z]{1,12}")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def parse_command(line: bytes) -> Command:
    """
    Split a command line (without its line end) into verb and argument.

    The line must be UTF-8 (RFC 6531 allows UTF-8 in paths; everything else is ASCII) without
    NUL or other controls but tab.
    """
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise SMTPSyntaxError("command line is not UTF-8", 500, "5.5.2") from None
    if _CONTROL.search(text):
        raise SMTPSyntaxError("control character in command line", 500, "5.5.2")
    verb, _, argument = text.partition(" ")
    if not _VERB.fullmatch(verb):
        raise SMTPSyntaxError("command unrecognized", 500, "5.5.2")
    return Command(verb.upper(), argument)


# -- paths (RFC 5321 4.1.2, RFC 6531 3.3) ---------------------------------------------

_ATEXT_ASCII = "A-Za-z0-9!#$%&'*+\\-/=?^_`{|}~"
_ATOM_ASCII = re.compile(f"[{_ATEXT_ASCII}]+")
_ATOM_UTF8 = re.compile(f"(?:[{_ATEXT_ASCII}]|[^\\x00-\\x7f])+")
_SUBDOMAIN_ASCII = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
_SUBDOMAIN_UTF8 = re.compile(
    r"(?:[A-Za-z0-9]|[^\x00-\x7f])(?:(?:[A-Za-z0-9-]|[^\x00-\x7f])*(?:[A-Za-z0-9]|[^\x00-\x7f]))?"
)
_GENERAL_LITERAL = re.compile(r"[A-Za-z0-9-]*[A-Za-z0-9]:[\x21-\x5a\x5e-\x7e]+")

#: RFC 5321 4.5.3.1.1 and 4.5.3.1.2.
MAX_LOCAL_PART = 64
MAX_DOMAIN = 255


def _is_domain(text: str, utf8: bool) -> bool:
    pattern = _SUBDOMAIN_UTF8 if utf8 else _SUBDOMAIN_ASCII
    return bool(text) and all(pattern.fullmatch(label) for label in text.split("."))


def _is_literal(text: str) -> bool:
    """RFC 5321 4.1.3 address literals, the brackets included."""
    if not (text.startswith("[") and text.endswith("]")):
        return False
    inner = text[1:-1]
    if inner[:5].lower() == "ipv6:":
        try:
            ipaddress.IPv6Address(inner[5:])
        except ValueError:
            return False
        return True
    if re.fullmatch(r"[0-9.]+", inner):
        try:
            ipaddress.IPv4Address(inner)
        except ValueError:
            return False
        return True
    return bool(_GENERAL_LITERAL.fullmatch(inner))


def _parse_local(text: str, utf8: bool) -> tuple[str, str]:
    """Return (local part unquoted, rest starting at '@')."""
    if text.startswith('"'):
        out = []
        i = 1
        while i < len(text):
            c = text[i]
            if c == "\\":
                if i + 1 >= len(text) or not (" " <= text[i + 1] <= "~"):
                    raise SMTPSyntaxError("bad quoted-pair in local part", 501, "5.1.3")
                out.append(text[i + 1])
                i += 2
            elif c == '"':
                return "".join(out), text[i + 1 :]
            elif " " <= c <= "~" or (utf8 and ord(c) > 127):
                out.append(c)
                i += 1
            else:
                raise SMTPSyntaxError("bad character in quoted local part", 501, "5.1.3")
        raise SMTPSyntaxError("unterminated quoted local part", 501, "5.1.3")
    local, at, rest = text.partition("@")
    if not at:
        raise SMTPSyntaxError("address lacks @domain", 501, "5.1.3")
    atom = _ATOM_UTF8 if utf8 else _ATOM_ASCII
    if not all(atom.fullmatch(part) for part in local.split(".")):
        raise SMTPSyntaxError("bad local part", 501, "5.1.3")
    return local, "@" + rest


def quote_local(local: str) -> str:
    """A local part as it must be written in a path: a dot-string, or quoted."""
    if all(_ATOM_UTF8.fullmatch(part) for part in local.split(".")):
        return local
    return '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_path(
    text: str, *, utf8: bool, null_ok: bool = False, postmaster_ok: bool = False
) -> tuple[MailboxPath, str]:
    """
    Parse a path at the start of C{text}: C{<local@domain>}, with an optional source route
    (dropped), or C{<>} if C{null_ok}, or C{<Postmaster>} (domain C{""}) if C{postmaster_ok}
    (RFC 5321 4.1.1.3). Returns the path and the rest of the text (parameters).

    Without C{utf8}, a non-ASCII address fails with 553 5.6.7 (RFC 6531 3.7.4.1).
    """
    if not text.startswith("<"):
        raise SMTPSyntaxError("path must be enclosed in <>", 501, "5.5.4")
    end = _path_end(text)
    inner, rest = text[1:end], text[end + 1 :]
    if rest and not rest.startswith(" "):
        raise SMTPSyntaxError("junk after path", 501, "5.5.4")
    if inner == "":
        if not null_ok:
            raise SMTPSyntaxError("null path not allowed here", 501, "5.1.3")
        return MailboxPath("", ""), rest.lstrip(" ")
    if postmaster_ok and inner.lower() == "postmaster":
        return MailboxPath(inner, ""), rest.lstrip(" ")
    if not utf8 and not inner.isascii():
        raise SMTPSyntaxError("non-ASCII address needs SMTPUTF8", 553, "5.6.7")
    if inner.startswith("@"):
        # A source route: RFC 5321 4.1.1.3 says accept and ignore it. Each hop must parse.
        route, colon, inner = inner.partition(":")
        if not colon or not all(
            hop.startswith("@") and _is_domain(hop[1:], utf8) for hop in route.split(",")
        ):
            raise SMTPSyntaxError("bad source route", 501, "5.1.3")
    local, rest_at = _parse_local(inner, utf8)
    domain = rest_at[1:]
    if not rest_at.startswith("@") or not (_is_domain(domain, utf8) or _is_literal(domain)):
        raise SMTPSyntaxError("bad domain in address", 501, "5.1.3")
    if not local:
        raise SMTPSyntaxError("empty local part", 501, "5.1.3")
    if len(local.encode("utf-8")) > MAX_LOCAL_PART or len(domain.encode("utf-8")) > MAX_DOMAIN:
        raise SMTPSyntaxError("address too long", 501, "5.1.3")
    return MailboxPath(local, domain), rest.lstrip(" ")


def _path_end(text: str) -> int:
    """Index of the '>' closing the path that starts at text[0], skipping quoted strings."""
    quoted = False
    i = 1
    while i < len(text):
        c = text[i]
        if quoted and c == "\\":
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif c == ">" and not quoted:
            return i
        i += 1
    raise SMTPSyntaxError("path lacks its closing >", 501, "5.5.4")


# -- parameters (RFC 5321 4.1.2 Mail-parameters, RFC 6531 3.3 esmtp-value) --------------

_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


def parse_params(text: str) -> dict[str, str | None]:
    """
    Parse C{KEY[=VALUE]} parameters separated by spaces; keys upper-cased.

    Values are any printable characters but C{=} and space (RFC 5321), plus UTF-8 (RFC 6531).
    A repeated key is an error.
    """
    params: dict[str, str | None] = {}
    for item in text.split(" "):
        if not item:
            continue  # tolerate doubled spaces
        key, eq, value = item.partition("=")
        if not _KEYWORD.fullmatch(key):
            raise SMTPSyntaxError(f"bad parameter {item[:40]!r}", 501, "5.5.4")
        if eq and (not value or "=" in value or any(ord(c) < 33 or ord(c) == 127 for c in value)):
            raise SMTPSyntaxError(f"bad value for {key.upper()}", 501, "5.5.4")
        key = key.upper()
        if key in params:
            raise SMTPSyntaxError(f"parameter {key} given twice", 501, "5.5.4")
        params[key] = value if eq else None
    return params


_XTEXT_HEX = re.compile(r"\+([0-9A-F]{2})")


def decode_xtext(text: str) -> str:
    """Decode RFC 3461 4 xtext (C{+XX} hex escapes); raise L{SMTPSyntaxError} if malformed."""
    if not text.isascii() or any(c == "+" for c in _XTEXT_HEX.sub("", text)):
        raise SMTPSyntaxError("malformed xtext", 501, "5.5.4")
    return _XTEXT_HEX.sub(lambda m: chr(int(m.group(1), 16)), text)


def encode_xtext(text: str) -> str:
    """Encode to xtext: C{+}, C{=}, controls and non-ASCII as C{+XX} (UTF-8 octets)."""
    out = []
    for byte in text.encode("utf-8"):
        c = chr(byte)
        out.append(c if 33 <= byte <= 126 and c not in "+=" else f"+{byte:02X}")
    return "".join(out)


def check_known(params: Mapping[str, str | None], known: Iterable[str]) -> None:
    """Refuse a parameter that is not in C{known} (RFC 5321 4.1.1.11: 555)."""
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise SMTPSyntaxError(f"parameter {unknown[0]} not supported", 555, "5.5.4")


def check_mail_params(params: Mapping[str, str | None], max_size: int) -> None:
    """Check the values of MAIL FROM's parameters (RFC 1870, 6152, 6531, 3461, 4954 5)."""
    size = params.get("SIZE")
    if "SIZE" in params:
        if size is None or not size.isdigit() or len(size) > 20:
            raise SMTPSyntaxError("syntax: SIZE=number", 501, "5.5.4")
        if int(size) > max_size:
            raise SMTPSyntaxError("message size exceeds fixed maximum message size", 552, "5.3.4")
    body = params.get("BODY", "7BIT")
    if body is None or body.upper() not in ("7BIT", "8BITMIME"):
        raise SMTPSyntaxError("BODY must be 7BIT or 8BITMIME", 501, "5.5.4")
    if "SMTPUTF8" in params and params["SMTPUTF8"] is not None:
        raise SMTPSyntaxError("SMTPUTF8 takes no value", 501, "5.5.4")
    ret = params.get("RET", "FULL")
    if ret is None or ret.upper() not in ("FULL", "HDRS"):
        raise SMTPSyntaxError("RET must be FULL or HDRS", 501, "5.5.4")  # RFC 3461 4.3
    if "ENVID" in params:
        envid = params["ENVID"]
        if envid is None or len(envid) > 100:
            raise SMTPSyntaxError("bad ENVID", 501, "5.5.4")  # RFC 3461 4.4
        decode_xtext(envid)
    if "AUTH" in params:
        # RFC 4954 5: parsed, then ignored: we do not relay on another server's word.
        value = params["AUTH"]
        if value is None:
            raise SMTPSyntaxError("AUTH= needs a value", 501, "5.5.4")
        decode_xtext(value)


def parse_rcpt_dsn(params: Mapping[str, str | None]) -> tuple[frozenset[str] | None, str | None]:
    """RCPT TO's DSN parameters (RFC 3461 4.1, 4.2): NOTIFY as a set, ORCPT decoded."""
    notify: frozenset[str] | None = None
    if "NOTIFY" in params:  # RFC 3461 4.1
        value = (params["NOTIFY"] or "").upper()
        notify = frozenset(value.split(","))
        if (
            not value
            or not notify <= {"NEVER", "SUCCESS", "FAILURE", "DELAY"}
            or ("NEVER" in notify and len(notify) > 1)
        ):
            raise SMTPSyntaxError("NOTIFY must be NEVER or SUCCESS,FAILURE,DELAY", 501, "5.5.4")
    orcpt: str | None = None
    if "ORCPT" in params:  # RFC 3461 4.2: addr-type ";" xtext
        value = params["ORCPT"] or ""
        kind, semicolon, address = value.partition(";")
        if not semicolon or not kind or not address or len(value) > 500:
            raise SMTPSyntaxError("syntax: ORCPT=addr-type;address", 501, "5.5.4")
        orcpt = f"{kind};{decode_xtext(address)}"
    return notify, orcpt


# -- replies -------------------------------------------------------------------------


def format_reply(code: int, enhanced: str | None, text: str | Iterable[str]) -> bytes:
    """
    Format a reply, one line per text line (RFC 5321 4.2.1), each with the enhanced status
    code (RFC 2034 3) when given. Line breaks in the text never reach the wire raw.
    """
    if isinstance(text, str):
        return _format_cached(code, enhanced, text)
    return _format(code, enhanced, text)


@functools.lru_cache(maxsize=512)
def _format_cached(code: int, enhanced: str | None, text: str) -> bytes:
    return _format(code, enhanced, text)


def _format(code: int, enhanced: str | None, text: str | Iterable[str]) -> bytes:
    lines = text.splitlines() if isinstance(text, str) else [t for t in text]
    lines = [line for part in lines for line in (part.splitlines() or [""])] or [""]
    prefix = f"{enhanced} " if enhanced else ""
    out = []
    for i, line in enumerate(lines):
        sep = " " if i == len(lines) - 1 else "-"
        out.append(f"{code}{sep}{prefix}{line}\r\n")
    return "".join(out).encode("utf-8")
