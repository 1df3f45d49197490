"""
Random MIME trees built and serialised by the stdlib email package: our offsets-based tree
must find the same parts, types and raw bodies as email.parser does on the same bytes.
"""

from __future__ import annotations

import email
import email.policy
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twisted_mail_stack.mime import Part, SectionSpec, analyse, parse_structure, section_bytes

_text = st.text(alphabet="abc xyz\n.-", max_size=60)
_leaf = st.one_of(
    _text.map(lambda t: MIMEText(t, "plain", "us-ascii")),
    _text.map(lambda t: MIMEText(t, "html", "utf-8")),
    st.binary(max_size=80).map(lambda b: MIMEApplication(b, "octet-stream")),
)


def _multipart(children: list[Message], subtype: str) -> Message:
    m = MIMEMultipart(subtype)
    for child in children:
        m.attach(child)
    return m


def _message(inner: Message) -> Message:
    inner["Subject"] = "inner"
    return MIMEMessage(inner)


_trees = st.recursive(
    _leaf,
    lambda children: st.one_of(
        st.builds(
            _multipart,
            st.lists(children, min_size=1, max_size=3),
            st.sampled_from(["mixed", "alternative"]),
        ),
        children.map(_message),
    ),
    max_leaves=6,
)


def _ours(raw: bytes, part: Part) -> list[tuple[str, bytes | None]]:
    """Pre-order like Message.walk(): (type, raw body of a leaf)."""
    out: list[tuple[str, bytes | None]] = []
    kind = (part.type + b"/" + part.subtype).decode()
    if part.children:
        out.append((kind, None))
        for child in part.children:
            out += _ours(raw, child)
    elif part.message is not None:
        out.append((kind, None))
        out += _ours(raw, part.message)
    else:
        out.append((kind, raw[part.body_start : part.end]))
    return out


def _theirs(msg: Message) -> list[tuple[str, bytes | None]]:
    out: list[tuple[str, bytes | None]] = []
    for m in msg.walk():
        if m.is_multipart():
            out.append((m.get_content_type(), None))
        else:
            payload = m.get_payload()
            assert isinstance(payload, str)
            out.append((m.get_content_type(), payload.encode("ascii", "surrogateescape")))
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_trees)
def test_same_tree_as_email_parser(tree: Message) -> None:
    tree["From"] = "a@example.com"
    raw = tree.as_bytes(policy=email.policy.SMTP)
    root, _ = parse_structure(raw)
    theirs = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert _ours(raw, root) == _theirs(theirs)
    # BODY[] of the whole message is the stored bytes; the structure serialises.
    assert section_bytes(raw, SectionSpec()) == raw
    assert analyse(raw).bodystructure.startswith(b"(")
