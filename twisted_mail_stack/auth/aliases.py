"""
The alias file, C{<data>/aliases}, edited by C{mailstack alias}.

Lines are C{alias@domain: target1, target2} (mail to the alias goes to every target, local or
remote) or C{@domain: target} (the domain's catch-all, used when nothing else matches).
Blank lines and C{#} lines are comments.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import NoSuchAlias
from ..values import Address, normalise_domain
from ._files import EntryFile
from .userdb import canonical_user, check_name_text

__all__ = ["AliasFile", "alias_key", "catch_all_domain", "alias_target"]


def alias_key(source: str) -> str:
    """
    Normalise an alias source: C{Info@Example.ORG} -> C{info@example.org}, and a catch-all
    C{@Example.ORG} -> C{@example.org}. Raises L{ValueError} naming the problem.
    """
    if source.startswith("@"):
        return "@" + catch_all_domain(source)
    return canonical_user(source)


def catch_all_domain(domain: str) -> str:
    """Normalise a catch-all domain, given as C{example.org} or C{@example.org}."""
    check_name_text(domain, "catch-all domain")
    try:
        return normalise_domain(domain.removeprefix("@"))
    except ValueError as e:
        raise ValueError(f"catch-all domain {domain!r}: {e}") from None


def alias_target(target: str) -> str:
    """
    Validate an alias target and return it with its domain normalised. The local part keeps its
    case: a remote host may care (RFC 5321 2.4). Raises L{ValueError} naming the problem.
    """
    check_name_text(target, "alias target")
    try:
        return str(Address.parse(target))
    except ValueError as e:
        raise ValueError(f"alias target {target!r}: {e}") from None


class AliasFile(EntryFile[tuple[str, ...]]):
    """The aliases and catch-alls, keyed by normalised source (C{alias@domain} or C{@domain})."""

    mode = 0o644
    header = "# mailstack aliases: 'alias@domain: target, target' or '@domain: catch-all-target'"

    def _parse_entry(self, line: str) -> tuple[str, tuple[str, ...]]:
        source, colon, rest = line.partition(":")
        if not colon:
            raise ValueError("expected 'alias@domain: target, ...'")
        key = alias_key(source.strip())
        targets = _unique(alias_target(t.strip()) for t in rest.split(","))
        if key.startswith("@") and len(targets) != 1:
            raise ValueError(f"catch-all {key} needs exactly one target")
        return key, targets

    def _format_entry(self, key: str, value: tuple[str, ...]) -> str:
        return f"{key}: {', '.join(value)}"

    def entries(self) -> list[tuple[str, list[str]]]:
        """Every (source, targets) in file order; a catch-all's source is C{@domain}."""
        return [(k, list(v)) for k, v in self._current().items()]

    def aliases(self) -> dict[str, list[str]]:
        """Alias address -> targets, without the catch-alls."""
        return {k: list(v) for k, v in self._current().items() if not k.startswith("@")}

    def catch_all(self) -> dict[str, str]:
        """Domain -> catch-all target."""
        return {k[1:]: v[0] for k, v in self._current().items() if k.startswith("@")}

    def add(self, source: str, targets: str | Iterable[str]) -> str:
        """
        Add targets to an alias (creating it) and return its normalised source.

        A catch-all (C{@domain}) has one target: adding a second raises L{ValueError}, as does a
        malformed source or target.
        """
        key = alias_key(source)
        new = [alias_target(t) for t in ([targets] if isinstance(targets, str) else targets)]
        if not new:
            raise ValueError("no targets given")
        merged = _unique([*self._current().get(key, ()), *new])
        if key.startswith("@") and len(merged) != 1:
            raise ValueError(f"catch-all {key} already has a target; remove it first")
        self._set(key, merged)
        return key

    def remove(self, source: str, targets: Iterable[str] | None = None) -> None:
        """
        Remove an alias, or only some of its targets (the alias goes when none are left).

        Raises L{NoSuchAlias} if the alias, or one of the named targets, is not there.
        """
        try:
            key = alias_key(source)
        except ValueError as e:
            raise NoSuchAlias(str(e)) from None
        current = self._current().get(key)
        if current is None:
            raise NoSuchAlias(f"no alias {key}")
        if targets is None:
            self._delete(key)
            return
        # Targets compare with the local part's case ignored, like aliases themselves.
        drop = {_fold(alias_target(t)) for t in targets}
        missing = drop - {_fold(t) for t in current}
        if missing:
            raise NoSuchAlias(f"{key} has no target {', '.join(sorted(missing))}")
        left = tuple(t for t in current if _fold(t) not in drop)
        if left:
            self._set(key, left)
        else:
            self._delete(key)


def _fold(target: str) -> str:
    """The comparison key of a valid target: local part without case, as for accounts."""
    return Address.parse(target).key


def _unique(targets: Iterable[str]) -> tuple[str, ...]:
    """Drop targets equal to an earlier one but for the case of the local part."""
    first: dict[str, str] = {}
    for target in targets:
        first.setdefault(_fold(target), target)
    return tuple(first.values())
