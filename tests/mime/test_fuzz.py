"""Arbitrary and MIME-shaped bytes never make the structure code raise; offsets stay in range."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.mime import samples
from twisted_mail_stack.mime import (
    MessageStructure,
    Part,
    SectionSpec,
    analyse,
    envelope_only,
    matches_text,
    parse_structure,
    section_bytes,
    sent_date,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Fragments that steer random messages into the interesting paths.
_FRAGMENTS = [
    b"\r\n",
    b"\n",
    b"\r\n\r\n",
    b"Content-Type: multipart/mixed; boundary=b\r\n",
    b'Content-Type: multipart/digest; boundary="b"\r\n',
    b"Content-Type: message/rfc822\r\n",
    b'Content-Type: text/plain; charset="utf-8\r\n',
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b'Content-Disposition: attachment; filename="a;b"; x\r\n',
    b"From: a (b (c) <d@e>, g: h@i, ; <@r:x@y>\r\n",
    b'To: "unterminated <x@y>\r\n',
    b"Subject: =?utf-8?b?w7Y=?= =?bad?q?=ZZ?=\r\n",
    b"Date: 31 Feb 99999 25:61\r\n",
    b"--b\r\n",
    b"--b--\r\n",
    b" folded\r\n",
    b"\xff\x00\xc3",
    b"=C3=\r\n",
]

messages = st.one_of(
    st.binary(max_size=600),
    st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.binary(max_size=20)), max_size=40).map(
        b"".join
    ),
    st.sampled_from([samples.IMAPTEST_MIME, samples.ATTACHMENT, samples.ALTERNATIVE]).flatmap(
        lambda raw: st.integers(0, len(raw)).map(lambda n: raw[:n])  # truncated anywhere
    ),
)

specs = st.builds(
    SectionSpec,
    part=st.lists(st.integers(0, 4), max_size=4).map(tuple),
    kind=st.sampled_from(["", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"]),
    fields=st.lists(st.sampled_from([b"from", b"subject", b"content-type", b"x"]), max_size=3).map(
        tuple
    ),
    partial=st.none() | st.tuples(st.integers(0, 2000), st.integers(0, 2000)),
)


def _check_offsets(part: Part, raw_len: int) -> None:
    assert 0 <= part.header_start <= part.header_end <= part.body_start <= part.end <= raw_len
    for child in part.children:
        assert part.body_start <= child.header_start and child.end <= part.end
        _check_offsets(child, raw_len)
    if part.message is not None:
        assert part.message.header_start == part.body_start and part.message.end == part.end
        _check_offsets(part.message, raw_len)


@FUZZ
@given(messages)
def test_analyse_never_raises(raw: bytes) -> None:
    s = analyse(raw)
    assert s.body.startswith(b"(") and s.bodystructure.startswith(b"(")
    assert s.envelope == envelope_only(raw).to_imap()
    assert MessageStructure.from_bytes(s.to_bytes()) == s
    root, _ = parse_structure(raw)
    _check_offsets(root, len(raw))
    sent_date(raw)
    for where in ("BODY", "TEXT", "FROM"):
        matches_text(raw, "ö", where)  # type: ignore[arg-type]


@FUZZ
@given(messages, specs)
def test_sections_stay_in_range(raw: bytes, spec: SectionSpec) -> None:
    data = section_bytes(raw, spec, analyse(raw).spans)
    if data is None:
        return
    if spec.partial is not None:
        origin, size = spec.partial
        assert len(data) <= size
        whole = section_bytes(raw, SectionSpec(spec.part, spec.kind, spec.fields))
        assert whole is not None and data == whole[origin : origin + size]
    elif spec.kind not in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        assert data in raw
