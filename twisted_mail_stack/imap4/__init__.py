"""
IMAP4rev1 (RFC 3501) with its common extensions.

The wire format lives in modules that import no Twisted and do no I/O, in the style of h11:

- C{_framer}: bytes in, whole commands out (L{RawCommand}). Splits lines, collects
  synchronising, non-synchronising (LITERAL+/LITERAL-, RFC 7888) and binary (C{~{n}}) literals,
  pauses at a synchronising literal until the session calls C{accept_literal} (after sending
  C{+}) or C{refuse_literal} (after NO/BAD), enforces the line, literal and command size limits
  and stays in step with the client after rejecting something (L{Rejected}, or L{Fatal} when
  the only safe answer is to close).
- C{_parser} (with C{_reader}, C{_sequence}, C{_search}, C{_fetch}): one L{RawCommand} to a
  L{TaggedCommand} holding a typed value from C{_commands}, or a L{ParseError} that says how to
  answer (C{tag BAD}, C{* BAD}, or C{NO [BADCHARSET]}/C{NO [USEATTR]}). Parsing never raises.
  C{_commands.valid_states} tells in which session states a command is allowed.
- C{_format}: responses as bytes: tagged, untagged and continuation lines, response codes,
  strings as atoms, quoted strings or literals, modified UTF-7 mailbox names, compact sequence
  sets, FETCH items, and the literal headers after which the session streams a body.

The session (states, the mailbox contract, twisted.cred, IDLE, STARTTLS, untagged updates) is
built on top of these; it owns every decision the wire layer only reports.
"""
