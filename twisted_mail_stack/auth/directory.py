"""
Who receives mail here: local domains, accounts (the L{UserDB}), aliases and catch-alls.

SMTP asks L{Directory.resolve} for each RCPT; the answer is the local accounts and remote
addresses the message goes to, or None to refuse the recipient.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from twisted.logger import Logger

from ..values import Address, normalise_domain
from .aliases import AliasFile, alias_key, alias_target, catch_all_domain
from .userdb import UserDB

__all__ = ["Directory", "AliasFile"]

_log = Logger()

#: How deep aliases may point at aliases before we stop.
MAX_ALIAS_DEPTH = 10


class Directory:
    """
    The local domains and the addresses in them.

    C{aliases} maps C{alias@domain} to targets; C{catch_all} maps a domain (C{example.org} or
    C{@example.org}) to one target. Targets are addresses, local or remote. C{postmaster} is
    where C{postmaster@} of every local domain goes when no alias or account says otherwise.
    With C{alias_file}, its entries are used too (re-read when it changes on disk); the
    mappings given here win over the file's for the same source.

    Raises L{ValueError} naming a malformed domain, alias or target.
    """

    def __init__(
        self,
        domains: Iterable[str],
        userdb: UserDB,
        aliases: Mapping[str, Sequence[str]] = {},  # noqa: B006 - read only
        catch_all: Mapping[str, str] = {},  # noqa: B006 - read only
        postmaster: str | None = None,
        *,
        alias_file: AliasFile | None = None,
    ) -> None:
        self.domains: tuple[str, ...] = tuple(dict.fromkeys(normalise_domain(d) for d in domains))
        self.userdb = userdb
        self._aliases = {
            alias_key(k): [alias_target(t) for t in ([v] if isinstance(v, str) else v)]
            for k, v in aliases.items()
        }
        self._catch_all = {catch_all_domain(k): alias_target(v) for k, v in catch_all.items()}
        self.postmaster = alias_target(postmaster) if postmaster else None
        self._alias_file = alias_file

    @property
    def default_domain(self) -> str | None:
        """The first local domain: where a bare login name like C{alice} belongs."""
        return self.domains[0] if self.domains else None

    def is_local_domain(self, domain: str) -> bool:
        """True if C{domain} (any case, trailing dot, Unicode or A-labels) is ours."""
        try:
            return normalise_domain(domain) in self.domains
        except ValueError:
            return False

    def resolve(self, address: Address | str) -> list[str] | None:
        """
        Return where mail to C{address} goes: local account names and remote addresses
        (as given in alias targets, for the relay), without duplicates.

        Lookup order for a local address: alias, account, then for C{postmaster} the
        configured postmaster, then the domain's catch-all, then for C{postmaster} the first
        account. Returns None for an unknown local address and for any non-local address.
        """
        try:
            addr = address if isinstance(address, Address) else Address.parse(address)
        except ValueError:
            return None
        if not self.is_local_domain(addr.domain):
            return None
        aliases, catch_all = self._maps()
        found: dict[str, None] = {}  # an ordered set
        _Expansion(self, aliases, catch_all, found).expand(addr, 0)
        return list(found) or None

    def _maps(self) -> tuple[dict[str, list[str]], dict[str, str]]:
        if self._alias_file is None:
            return self._aliases, self._catch_all
        return (
            self._alias_file.aliases() | self._aliases,
            self._alias_file.catch_all() | self._catch_all,
        )


class _Expansion:
    """One resolution: walks aliases depth-first, collecting destinations in C{found}."""

    def __init__(
        self,
        directory: Directory,
        aliases: Mapping[str, Sequence[str]],
        catch_all: Mapping[str, str],
        found: dict[str, None],
    ) -> None:
        self.directory = directory
        self.users = directory.userdb.users()
        self.user_set = set(self.users)
        self.aliases = aliases
        self.catch_all = catch_all
        self.found = found
        self.path: set[str] = set()  # the addresses being expanded, to spot loops
        self.done: dict[str, bool] = {}  # addresses already expanded (a diamond is no loop)

    def expand(self, addr: Address, depth: int) -> bool:
        """Add the destinations of C{addr}; return False if it leads nowhere."""
        if not self.directory.is_local_domain(addr.domain):
            self.found[str(addr)] = None
            return True
        key = addr.key
        if key in self.done:
            return self.done[key]
        if key in self.path or depth > MAX_ALIAS_DEPTH:
            # An alias that names itself among its targets (or a loop back to it) keeps a
            # copy in its own mailbox, if it is an account; otherwise the branch ends.
            if key in self.user_set:
                self.found[key] = None
                return True
            _log.warn("alias loop or too deep nesting at {key}", key=key)
            return False
        self.path.add(key)
        try:
            self.done[key] = result = self._lookup(addr, key, depth)
        finally:
            self.path.discard(key)
        return result

    def _lookup(self, addr: Address, key: str, depth: int) -> bool:
        if key in self.aliases:
            results = [self._expand_text(t, depth) for t in self.aliases[key]]
            return any(results)
        if key in self.user_set:
            self.found[key] = None
            return True
        # RFC 5321 4.5.1: postmaster@ every local domain must be accepted; the local part
        # "postmaster" is matched without regard to case.
        is_postmaster = addr.local.lower() == "postmaster"
        postmaster = self.directory.postmaster
        if is_postmaster and postmaster and self._expand_text(postmaster, depth):
            return True
        target = self.catch_all.get(addr.domain)
        if target is not None and self._expand_text(target, depth):
            return True
        if is_postmaster and self.users:
            self.found[self.users[0]] = None
            return True
        return False

    def _expand_text(self, target: str, depth: int) -> bool:
        return self.expand(Address.parse(target), depth + 1)
