"""
The IMAP commands of the authenticated state (RFC 3501 6.3) and ENABLE, ID, NAMESPACE:
folders, subscriptions, listing, STATUS, APPEND and selecting a mailbox.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from ..errors import NoSuchMailbox
from ..interfaces import IMailbox, IMessageSource
from ..sources import BytesSource
from ..values import DELIMITER, Change, MailboxStatus, MessageInfo
from . import _commands as c
from . import _format as fmt
from ._session import Refusal, Reply, SessionBase
from .listing import list_responses, lsub_responses
from .selected import ListingCache, SelectedMailbox, listing_key

__all__ = ["MailboxCommands", "IMPLEMENTATION"]


#: RFC 2971: what ID tells the client.
IMPLEMENTATION = b'("name" "twisted-mail-stack")'


class _Listener:
    """One selection's change listener: queues changes until the view exists, then feeds it."""

    def __init__(self, session: MailboxCommands) -> None:
        self.session = session
        self.early: list[Change] = []
        self.selected: SelectedMailbox | None = None

    def __call__(self, change: Change) -> None:
        if self.selected is None:
            self.early.append(change)
            return
        self.selected.on_change(change)
        self.session.mailbox_changed(self.selected)


class MailboxCommands(SessionBase):
    #: Shared by the factory's sessions; keyed by the name the user logged in with.
    listings: ListingCache
    login_name: Hashable
    # -- any state ----------------------------------------------------------------------

    async def _cmd_id(self, tag: str, command: c.Id) -> Reply:
        self.send(b"* ID " + IMPLEMENTATION + b"\r\n")
        return Reply(text="ID completed")

    async def _cmd_enable(self, tag: str, command: c.Enable) -> Reply:
        enabled = []
        if "CONDSTORE" in command.capabilities:
            self.condstore = True
            enabled.append(b"CONDSTORE")
        self.send(b"* ENABLED" + b"".join(b" " + e for e in enabled) + b"\r\n")
        return Reply(text="ENABLE completed")

    async def _cmd_namespace(self, tag: str, command: c.Namespace) -> Reply:
        # RFC 2342: one personal namespace, no others.
        self.send(b'* NAMESPACE (("" "/")) NIL NIL\r\n')
        return Reply(text="NAMESPACE completed")

    # -- selecting ---------------------------------------------------------------------

    async def _cmd_select(self, tag: str, command: c.Select | c.Examine) -> Reply:
        read_only = isinstance(command, c.Examine)
        await self.deselect()  # RFC 3501 6.3.1: even if the new SELECT fails
        account = self.require_account()
        mailbox = await account.open_mailbox(command.mailbox)
        listener = _Listener(self)
        try:
            await mailbox.add_listener(listener)
            # RFC 3501 6.3.2: EXAMINE shows \Recent but claims nothing; the unclaimed messages
            # are the newest of those the status (taken first) counted.
            first = await mailbox.status()
            peek = first if read_only else None
            messages, status = await self._listing(mailbox, first)
            if peek is None:
                recent: Sequence[int] = await mailbox.claim_recent()
            else:
                known = [m.uid for m in messages if m.uid < peek.uidnext]
                recent = known[max(0, len(known) - peek.recent) :] if peek.recent else ()
        except BaseException:
            mailbox.close()
            raise
        selected = SelectedMailbox(
            mailbox.name,
            messages,
            uidvalidity=mailbox.uidvalidity,
            read_only=read_only,
            recent=recent,
            highestmodseq=status.highestmodseq,
        )
        listener.selected = selected
        for change in listener.early:
            selected.on_change(change)
        if self.closed:
            mailbox.close()
            return Reply()
        if command.condstore:
            self.condstore = True  # RFC 7162 3.1.8
        self.selected, self.mailbox, self.state = selected, mailbox, c.State.SELECTED
        out = [
            fmt.flags_response(selected.defined_flags),
            fmt.untagged_status(
                b"OK",
                "flags permitted" if not read_only else "read-only mailbox",
                selected.permanent_flags() if not read_only else b"PERMANENTFLAGS ()",
            ),
            fmt.exists(selected.announced),
            fmt.recent(selected.announced_recent),
        ]
        unseen = selected.first_unseen()
        if unseen is not None:
            out.append(fmt.untagged_status(b"OK", "first unseen", b"UNSEEN %d" % unseen))
        out += [
            fmt.untagged_status(b"OK", "UIDs valid", b"UIDVALIDITY %d" % mailbox.uidvalidity),
            fmt.untagged_status(b"OK", "predicted next UID", b"UIDNEXT %d" % status.uidnext),
            fmt.untagged_status(
                b"OK", "highest", b"HIGHESTMODSEQ %d" % max(1, selected.highestmodseq)
            ),
        ]
        self.send(b"".join(out))
        name = "EXAMINE" if read_only else "SELECT"
        return Reply(text=f"{name} completed", code="READ-ONLY" if read_only else "READ-WRITE")

    _cmd_examine = _cmd_select

    async def _listing(
        self, mailbox: IMailbox, first: MailboxStatus
    ) -> tuple[Sequence[MessageInfo], MailboxStatus]:
        """
        The folder's messages and a status no older than them (C{first}, taken after the
        listener was added, or a later one). A folder in the state a recent listing saw (same
        HIGHESTMODSEQ, UIDNEXT and count) is not listed again: listing builds an object per
        message, and most SELECTs find the folder as it was. Later changes come as events.
        """
        folder = (self.login_name, mailbox.name)
        key = listing_key(self.login_name, first)
        cached = self.listings.get(folder, key)
        if cached is not None:
            return cached, first
        messages = await mailbox.list_messages()
        status = await mailbox.status()
        if listing_key(self.login_name, status) == key:
            # Unchanged while listed: the listing is the folder in state C{key}.
            self.listings.put(folder, key, messages)
        return messages, status

    # -- the folder tree -----------------------------------------------------------------

    async def _cmd_create(self, tag: str, command: c.Create) -> Reply:
        # RFC 3501 6.3.3: a trailing delimiter only declares the intent to hold children.
        name = command.mailbox.rstrip(DELIMITER)
        if not name:
            raise Refusal("invalid mailbox name", "CANNOT")
        if len(command.special_use) > 1:
            raise Refusal("one special use per mailbox", "USEATTR")
        use = command.special_use[0] if command.special_use else None
        await self.require_account().create_mailbox(name, use)
        return Reply(text="CREATE completed")

    async def _cmd_delete(self, tag: str, command: c.Delete) -> Reply:
        if self.selected is not None and self.selected.name == command.mailbox:
            await self.deselect()
        await self.require_account().delete_mailbox(command.mailbox)
        return Reply(text="DELETE completed")

    async def _cmd_rename(self, tag: str, command: c.Rename) -> Reply:
        await self.require_account().rename_mailbox(command.old, command.new.rstrip(DELIMITER))
        return Reply(text="RENAME completed")

    async def _cmd_subscribe(self, tag: str, command: c.Subscribe | c.Unsubscribe) -> Reply:
        subscribe = isinstance(command, c.Subscribe)
        await self.require_account().set_subscribed(command.mailbox, subscribe)
        return Reply(text=("SUBSCRIBE" if subscribe else "UNSUBSCRIBE") + " completed")

    _cmd_unsubscribe = _cmd_subscribe

    async def _cmd_list(self, tag: str, command: c.List) -> Reply:
        infos = await self.require_account().list_mailboxes()
        self.send(b"".join(list_responses(infos, command)))
        return Reply(text="LIST completed")

    async def _cmd_lsub(self, tag: str, command: c.Lsub) -> Reply:
        infos = await self.require_account().list_mailboxes()
        self.send(b"".join(lsub_responses(infos, command.reference, command.pattern)))
        return Reply(text="LSUB completed")

    # -- one folder ------------------------------------------------------------------------

    async def _open(self, name: str, missing_code: str) -> tuple[IMailbox, bool]:
        """The selected handle if it is that folder, else a new one (to close: True)."""
        if self.mailbox is not None and self.selected is not None and self.selected.name == name:
            return self.mailbox, False
        try:
            return await self.require_account().open_mailbox(name), True
        except NoSuchMailbox:
            raise Refusal("no such mailbox", missing_code) from None

    async def _cmd_status(self, tag: str, command: c.Status) -> Reply:
        mailbox, opened = await self._open(command.mailbox, "NONEXISTENT")
        try:
            status = await mailbox.status()
        finally:
            if opened:
                mailbox.close()
        # \Recent is claimed by the session that selects: its own count for its mailbox, else
        # the messages nobody has claimed yet (what a SELECT now would see as \Recent).
        recent = status.recent
        if not opened and self.selected is not None:
            recent = self.selected.recent_count
        values = {
            c.StatusItem.MESSAGES: status.messages,
            c.StatusItem.RECENT: recent,
            c.StatusItem.UIDNEXT: status.uidnext,
            c.StatusItem.UIDVALIDITY: status.uidvalidity,
            c.StatusItem.UNSEEN: status.unseen,
            c.StatusItem.HIGHESTMODSEQ: max(1, status.highestmodseq),
        }
        items = [(item.value, values[item]) for item in command.items]
        self.send(fmt.status_response(command.mailbox, items))
        return Reply(text="STATUS completed")

    async def _cmd_append(self, tag: str, command: c.Append) -> Reply:
        # A large message comes spooled to a file (imap4.spool): the store links or copies it.
        message = command.message
        if isinstance(message, bytes):
            source: IMessageSource = BytesSource(message)
        elif IMessageSource.providedBy(message) and getattr(message, "error", None) is None:
            source = message
        else:
            raise Refusal("cannot spool the message; try again later", "SERVERBUG")
        mailbox, opened = await self._open(command.mailbox, "TRYCREATE")
        try:
            info = await mailbox.append(source, command.flags, command.internal_date)
            uidvalidity = mailbox.uidvalidity
        except NoSuchMailbox:
            raise Refusal("no such mailbox", "TRYCREATE") from None
        finally:
            if opened:
                mailbox.close()
        return Reply(text="APPEND completed", code=fmt.appenduid(uidvalidity, info.uid))
