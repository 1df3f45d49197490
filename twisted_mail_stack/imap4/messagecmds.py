"""
The IMAP commands of the selected state (RFC 3501 6.4; RFC 4315 UIDPLUS; RFC 6851 MOVE;
RFC 3691 UNSELECT; RFC 7162 CONDSTORE): CHECK, CLOSE, UNSELECT, EXPUNGE, SEARCH, FETCH,
STORE, COPY and MOVE. FETCH and SEARCH themselves live in C{imap4.fetch} and C{imap4.search}.
"""

from __future__ import annotations

from twisted.logger import Logger

from ..errors import NoSuchMailbox
from ..values import MessageInfo
from . import _commands as c
from . import _format as fmt
from ._fetch import Attribute
from ._sequence import SequenceSet, compact
from ._session import ANSWERED, Refusal, Reply, SessionBase, TransportOutput, bad
from .cache import MessageCache
from .fetch import FetchFailed, fetch
from .search import search, uses_modseq
from .selected import BadSequence

__all__ = ["MessageCommands"]

_log = Logger()


class MessageCommands(SessionBase):
    cache: MessageCache

    def _targets(self, sequence: SequenceSet, uid: bool) -> list[tuple[int, MessageInfo]]:
        selected, _ = self.require_selected()
        try:
            return selected.resolve(sequence, uid=uid)
        except BadSequence:
            raise bad("message number out of range") from None

    def _writable(self) -> None:
        selected, _ = self.require_selected()
        if selected.read_only:
            raise Refusal("mailbox is read-only", "READ-ONLY")

    async def _cmd_check(self, tag: str, command: c.Check) -> Reply:
        _, mailbox = self.require_selected()
        await mailbox.refresh()
        return Reply(text="CHECK completed")

    async def _cmd_close(self, tag: str, command: c.Close) -> Reply:
        # RFC 3501 6.4.2: expunge silently (no EXPUNGE responses), then leave.
        await self.deselect(expunge=True)
        return Reply(text="CLOSE completed")

    async def _cmd_unselect(self, tag: str, command: c.Unselect) -> Reply:
        await self.deselect()
        return Reply(text="UNSELECT completed")

    async def _cmd_expunge(self, tag: str, command: c.Expunge) -> Reply:
        self._writable()
        _, mailbox = self.require_selected()
        if command.uids is None:
            await mailbox.expunge()
        else:
            uids = [info.uid for _, info in self._targets(command.uids, True)]
            if uids:
                await mailbox.expunge(uids)
        # The EXPUNGE responses come from the change notifications, in flush().
        return Reply(text=("UID " if command.uids is not None else "") + "EXPUNGE completed")

    async def _cmd_search(self, tag: str, command: c.Search) -> Reply:
        selected, mailbox = self.require_selected()
        modseq = uses_modseq(command.key)
        if modseq:
            self.condstore = True
        found = await search(
            mailbox, selected.messages(), command.key, self.cache, recent=selected.recent
        )
        numbers = [info.uid for _, info in found] if command.uid else [n for n, _ in found]
        highest = max((info.modseq for _, info in found), default=None) if modseq else None
        self.send(fmt.search_response(numbers, highest))
        return Reply(text=("UID SEARCH" if command.uid else "SEARCH") + " completed")

    async def _cmd_fetch(self, tag: str, command: c.Fetch) -> Reply:
        selected, mailbox = self.require_selected()
        targets = self._targets(command.sequence, command.uid)
        if command.changed_since is not None or any(
            getattr(i, "value", None) == "MODSEQ" for i in command.items
        ):
            self.condstore = True  # RFC 7162 3.1: these enable CONDSTORE
        self.send(selected.flag_update())  # keywords another session made, before FETCH shows them
        output = TransportOutput(self.transport)
        self.transport.registerProducer(output, True)
        try:
            changed = await fetch(
                mailbox,
                targets,
                command,
                output,
                self.cache,
                read_only=selected.read_only,
                condstore=self.condstore,
                recent=selected.recent,
            )
        except FetchFailed as e:
            raise Refusal(e.text, e.code) from None
        except Exception:
            if not output.midway:
                raise
            # Part of a response is out: the only honest end is to drop the connection.
            _log.failure("IMAP FETCH failed midway; closing the connection")
            self.closed = True
            self.transport.abortConnection()
            return ANSWERED
        finally:
            self.transport.unregisterProducer()
        selected.reported(changed)
        if Attribute.FLAGS in command.items and command.changed_since is None:
            selected.reported(info.uid for _, info in targets)  # their flags were just shown
        return Reply(text=("UID FETCH" if command.uid else "FETCH") + " completed")

    async def _cmd_store(self, tag: str, command: c.Store) -> Reply:
        self._writable()
        selected, mailbox = self.require_selected()
        targets = self._targets(command.sequence, command.uid)
        if command.unchanged_since is not None:
            self.condstore = True
        result = await mailbox.set_flags(
            [info.uid for _, info in targets], command.flags, command.mode, command.unchanged_since
        )
        updated = {info.uid: info for info in result.updated}
        conflicts = set(result.conflicts)
        out = [selected.flag_update()]
        for number, info in targets if not command.silent or self.condstore else ():
            if info.uid in conflicts:
                continue
            current = selected.infos.get(info.uid, info)
            new = updated.get(info.uid)
            if new is not None and new.modseq >= current.modseq:
                current = new
            if not command.silent:
                out.append(selected.flags_fetch(number, current, condstore=self.condstore))
            elif self.condstore and new is not None:
                # RFC 7162 3.1.3: the new MODSEQ is reported even with .SILENT.
                out.append(selected.flags_fetch(number, current, condstore=True, flags=False))
        self.send(b"".join(out))
        selected.reported(info.uid for _, info in targets if info.uid not in conflicts)
        code = None
        if conflicts:
            failed = [
                info.uid if command.uid else n for n, info in targets if info.uid in conflicts
            ]
            code = b"MODIFIED " + compact(sorted(failed))
        return Reply(text=("UID STORE" if command.uid else "STORE") + " completed", code=code)

    async def _cmd_copy(self, tag: str, command: c.Copy | c.Move) -> Reply:
        move = isinstance(command, c.Move)
        if move:
            self._writable()
        _, mailbox = self.require_selected()
        uids = [info.uid for _, info in self._targets(command.sequence, command.uid)]
        name = ("UID " if command.uid else "") + ("MOVE" if move else "COPY")
        if not uids:
            return Reply(text=f"{name} completed: no messages")
        try:
            if move:
                result = await mailbox.move(uids, command.mailbox)
            else:
                result = await mailbox.copy(uids, command.mailbox)
        except NoSuchMailbox:
            raise Refusal("no such mailbox", "TRYCREATE") from None
        code = fmt.copyuid(result.uidvalidity, result.uids.items()) if result.uids else None
        if move:
            # RFC 6851 4.3: COPYUID goes in an untagged OK before the EXPUNGE responses.
            if code is not None:
                self.send(fmt.untagged_status(b"OK", "moved", code))
            return Reply(text=f"{name} completed")
        return Reply(text=f"{name} completed", code=code)

    _cmd_move = _cmd_copy
