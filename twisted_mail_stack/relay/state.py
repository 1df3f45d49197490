"""
The delivery state of one queue entry: per recipient, what happened so far.

The envelope file of an entry never changes; its state lives beside it in C{<id>.state}
(L{DeliveryQueue.save_state}), rewritten atomically after every attempt. An entry without a
state file has never been tried: L{EntryState.initial}.

Rules for the manager, so that a crash loses nothing and repeats little:
  - save the state after every attempt, before acting on it (removing the entry, bouncing);
    a crash between a 250 and that save repeats that delivery once, as SMTP itself allows;
  - a recipient in C{delivered} or C{failed} is final and never tried again;
  - enqueue a bounce under a queue id derived from the entry's (e.g. C{<id>B<n>}), so that a
    repeated enqueue after a crash fails with C{FileExistsError} instead of bouncing twice.
"""

from __future__ import annotations

from typing import Any

from attrs import evolve, field, frozen, validators

from ..values import Envelope

__all__ = ["RecipientState", "EntryState", "PENDING", "DELIVERED", "FAILED"]

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@frozen
class RecipientState:
    """
    One recipient: C{state} (C{pending}, C{delivered}, C{failed}); the last outcome as the DSN
    needs it: C{reply} (the SMTP reply text, or a local reason), C{status} (RFC 3463),
    C{remote_mta}, C{diagnostic_type} (C{smtp} or C{x-local}); when it was last tried (epoch);
    C{notified}, once its failure was reported to the sender.
    """

    address: str
    state: str = field(default=PENDING, validator=validators.in_((PENDING, DELIVERED, FAILED)))
    reply: str | None = None
    status: str | None = None
    remote_mta: str | None = None
    diagnostic_type: str = "smtp"
    last_attempt: float | None = None
    #: For a C{failed} recipient: its failure notice has been enqueued (or none was due).
    notified: bool = False


@frozen
class EntryState:
    """
    The state of an entry: its recipients in envelope order, the number of failed attempts
    (the C{failures} of L{schedule.next_attempt}), when to try next (epoch seconds), whether a
    delay notice was sent, and how many notifications were enqueued (names the next one).
    """

    recipients: tuple[RecipientState, ...]
    failures: int = 0
    next_attempt: float = 0.0
    warned: bool = False
    notices: int = 0

    @classmethod
    def initial(cls, envelope: Envelope) -> EntryState:
        """Every recipient pending, to be tried now."""
        return cls(tuple(RecipientState(r.address) for r in envelope.recipients))

    @property
    def pending(self) -> list[RecipientState]:
        return [r for r in self.recipients if r.state == PENDING]

    @property
    def done(self) -> bool:
        """No recipient is pending: the entry can go (after its notifications)."""
        return not self.pending

    def update(self, address: str, **changes: Any) -> EntryState:
        """A copy with the pending recipient C{address} changed; a final one is never changed."""
        updated = []
        for r in self.recipients:
            if r.address == address:
                if r.state != PENDING:
                    raise ValueError(f"{address} is already {r.state}")
                r = evolve(r, **changes)
            updated.append(r)
        return evolve(self, recipients=tuple(updated))

    @property
    def unnotified(self) -> list[RecipientState]:
        """Failed recipients whose failure notice is still to be enqueued."""
        return [r for r in self.recipients if r.state == FAILED and not r.notified]

    def mark_notified(self) -> EntryState:
        """A copy with every failed recipient marked notified."""
        return evolve(
            self,
            recipients=tuple(
                evolve(r, notified=True) if r.state == FAILED else r for r in self.recipients
            ),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "failures": self.failures,
            "next_attempt": self.next_attempt,
            "warned": self.warned,
            "notices": self.notices,
            "recipients": [
                {
                    "address": r.address,
                    "state": r.state,
                    "reply": r.reply,
                    "status": r.status,
                    "remote_mta": r.remote_mta,
                    "diagnostic_type": r.diagnostic_type,
                    "last_attempt": r.last_attempt,
                    "notified": r.notified,
                }
                for r in self.recipients
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EntryState:
        return cls(
            recipients=tuple(RecipientState(**r) for r in data["recipients"]),
            failures=data["failures"],
            next_attempt=data["next_attempt"],
            warned=data["warned"],
            notices=data["notices"],
        )
