"""
The C{mailstack} admin command: users, aliases, the outbound queue, configuration check.

C{queue} works on a stopped server's spool directly and asks a running one (found by the lock
its relay holds) through a request file it picks up within a second; see
L{twisted_mail_stack.relay.control}.

Exit codes: 0 done, 1 the operation was refused (e.g. the user exists), 2 bad usage or bad
configuration. Passwords are read from a prompt, or from standard input when it is not a terminal;
never from the command line.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

from .auth.aliases import AliasFile
from .auth.userdb import UserDB
from .config import Config, load_config
from .errors import ConfigError, NoSuchAlias
from .service import LISTENER_KINDS, prepare_data_dir
from .values import Address


class CommandError(Exception):
    """The operation was refused; the message says why (exit code 1)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mailstack", description=__doc__.strip().splitlines()[0])
    parser.add_argument("-c", "--config", help="TOML configuration file")
    parser.add_argument("-d", "--data", help="data directory (overrides the config file)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    user = commands.add_parser("user", help="manage users").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    for action, text in (
        ("add", "add a user"),
        ("passwd", "change a password"),
        ("del", "remove a user"),
    ):
        user.add_parser(action, help=text).add_argument("address")
    user.add_parser("list", help="list users")

    alias = commands.add_parser("alias", help="manage aliases").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = alias.add_parser("add", help="add targets to an alias (@domain for a catch-all)")
    add.add_argument("alias")
    add.add_argument("targets", nargs="+")
    alias.add_parser("del", help="remove an alias").add_argument("alias")
    alias.add_parser("list", help="list aliases")

    queue = commands.add_parser(
        "queue", help="inspect and act on the outbound queue (server running or stopped)"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    queue.add_parser("list", help="list queued messages")
    wait_help = "seconds to wait for a running server to report the outcome (default 10)"
    queue.add_parser("flush", help="try every queued message now").add_argument(
        "--wait", type=float, default=10.0, help=wait_help
    )
    for action, text in (
        ("show", "show one message: envelope, recipients' state, headers"),
        ("retry", "try one message now"),
        ("delete", "remove one message without notice"),
        ("bounce", "give up on one message and notify its sender"),
    ):
        sub = queue.add_parser(action, help=text)
        sub.add_argument("id")
        if action != "show":
            sub.add_argument("--wait", type=float, default=10.0, help=wait_help)

    commands.add_parser("check-config", help="check the configuration and data directory")
    return parser


def main(
    argv: Sequence[str] | None = None, stdin: TextIO | None = None, out: TextIO | None = None
) -> int:
    """Run the command; return its exit code."""
    stdin = stdin or sys.stdin
    out = out or sys.stdout
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    try:
        overrides = {"data_dir": args.data} if args.data else {}
        config = load_config(args.config, overrides)
        handler = _HANDLERS[(args.command, getattr(args, "action", None))]
        handler(config, args, stdin, out)
    except ConfigError as e:
        print(f"mailstack: configuration error: {e}", file=sys.stderr)
        return 2
    except (CommandError, ValueError) as e:
        print(f"mailstack: {e}", file=sys.stderr)
        return 1
    return 0


def _local_user(config: Config, text: str) -> str:
    address = Address.parse(text)
    if address.domain not in config.domains:
        raise CommandError(f"{address.domain} is not a local domain ({', '.join(config.domains)})")
    return address.key


def _read_password(stdin: TextIO) -> str:
    if stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Again: "):
            raise CommandError("the passwords differ")
    else:
        first = stdin.readline().rstrip("\r\n")
    if not first:
        raise CommandError("empty password")
    return first


def _userdb(config: Config) -> UserDB:
    return UserDB.load(str(prepare_data_dir(config) / "passwd"))


def _aliases(config: Config) -> AliasFile:
    return AliasFile.load(str(prepare_data_dir(config) / "aliases"))


def _user_add(config: Config, args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    user = _local_user(config, args.address)
    db = _userdb(config)
    if db.get_hash(user) is not None:
        raise CommandError(f"user {user} exists")
    db.add(user, _read_password(stdin))
    db.save()
    print(f"added {user}", file=out)


def _user_passwd(config: Config, args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    user = _local_user(config, args.address)
    db = _userdb(config)
    if db.get_hash(user) is None:
        raise CommandError(f"no user {user}")
    db.set_password(user, _read_password(stdin))
    db.save()
    print(f"password changed for {user}", file=out)


def _user_del(config: Config, args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    user = _local_user(config, args.address)
    db = _userdb(config)
    if db.get_hash(user) is None:
        raise CommandError(f"no user {user}")
    db.remove(user)
    db.save()
    print(f"removed {user} (their mail stays in the store)", file=out)


def _user_list(config: Config, args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    for user in _userdb(config).users():
        print(user, file=out)


def _alias_add(config: Config, args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    aliases = _aliases(config)
    name = args.alias
    domain = name[1:] if name.startswith("@") else Address.parse(name).domain
    if domain.lower().rstrip(".") not in config.domains:
        raise CommandError(f"{domain} is not a local domain ({', '.join(config.domains)})")
    key = aliases.add(name, args.targets)
    aliases.save()
    print(f"{key} -> {', '.join(dict(aliases.entries())[key])}", file=out)


def _alias_del(config: Config, args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    aliases = _aliases(config)
    try:
        aliases.remove(args.alias)
    except NoSuchAlias:
        raise CommandError(f"no alias {args.alias}") from None
    aliases.save()
    print(f"removed {args.alias}", file=out)


def _alias_list(config: Config, args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    for name, targets in _aliases(config).entries():
        print(f"{name}: {', '.join(targets)}", file=out)


def _check_config(config: Config, args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    data = config.data_path
    if data.exists():
        if not os.access(data, os.W_OK | os.X_OK) or not data.is_dir():
            raise ConfigError("data_dir", f"{data} is not a writable directory")
    for name in (config.tls.cert, config.tls.key):
        if name is not None and not os.access(name, os.R_OK):
            raise ConfigError("tls", f"cannot read {name}")
    users = _userdb(config).users() if data.exists() else []
    print(f"configuration OK: domains {', '.join(config.domains)}; data in {data}", file=out)
    print(f"  store: {config.store.backend.value}; users: {len(users)}", file=out)
    for kind in LISTENER_KINDS:
        endpoints = getattr(config.listeners, kind.key)
        print(f"  {kind.key}: {', '.join(endpoints) or 'off'}", file=out)
    relay = config.relay
    route = f"smarthost {relay.smarthost}" if relay.smarthost else "MX records"
    dns = ", ".join(relay.nameservers) or "/etc/resolv.conf"
    print(f"  relay: {route}; {len(relay.transports)} transport(s); DNS: {dns}", file=out)


def _queue_path(config: Config) -> str:
    return str(prepare_data_dir(config) / "queue")


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _queue_list(config: Config, args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    from .relay.control import Spool

    spool = Spool(_queue_path(config))
    count = 0
    for queue_id in spool.ids():
        try:
            info = spool.info(queue_id)
        except KeyError:
            continue  # delivered meanwhile
        count += 1
        state = info.state
        due = _when(state.next_attempt) if info.tried and state.pending else "now"
        print(
            f"{queue_id}  {info.size:>9}  {_when(info.queued_at)}  "
            f"<{info.envelope.sender}>  next: {due}",
            file=out,
        )
        for r in state.recipients:
            reason = f" ({r.reply})" if r.reply else ""
            print(f"    {r.state:<9} <{r.address}>{reason}", file=out)
    print(f"{count} message{'s' if count != 1 else ''} queued", file=out)


def _queue_show(config: Config, args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    from .relay.control import Spool

    spool = Spool(_queue_path(config))
    try:
        info = spool.info(args.id)
        headers = spool.headers(args.id)
    except (KeyError, FileNotFoundError):
        raise CommandError(f"no queued message {args.id}") from None
    state, env = info.state, info.envelope
    print(f"id: {info.queue_id}", file=out)
    print(f"arrival: {_when(info.queued_at)} UTC; size: {info.size}", file=out)
    print(f"sender: <{env.sender}>", file=out)
    print(f"attempts failed: {state.failures}", file=out)
    if state.pending:
        due = _when(state.next_attempt) + " UTC" if info.tried else "now"
        print(f"next attempt: {due}", file=out)
    for r in state.recipients:
        print(f"recipient: <{r.address}> {r.state}", file=out)
        if r.reply:
            relay = f" from {r.remote_mta}" if r.remote_mta else ""
            print(f"    last: {r.status} {r.reply}{relay}", file=out)
    print("", file=out)
    print(headers.decode("utf-8", "replace").rstrip("\r\n").replace("\r\n", "\n"), file=out)


def _queue_act(config: Config, args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    from .relay.control import Spool, request, server_lock

    path = _queue_path(config)
    spool = Spool(path)
    queue_id = getattr(args, "id", None)
    with server_lock(path) as stopped:
        if queue_id is not None and queue_id not in spool.ids():
            raise CommandError(f"no queued message {queue_id}")
        if not stopped:
            name = request(path, args.action, queue_id)
        elif args.action == "flush":
            ids = spool.ids()
            for each in ids:
                spool.retry(each)
            print(f"flush: {len(ids)} message(s) due when the server starts", file=out)
            return
        else:
            assert queue_id is not None
            getattr(spool, args.action)(queue_id)
            done = {
                "retry": "due when the server starts",
                "delete": "deleted",
                "bounce": "bounced; the sender is notified when the server starts",
            }
            print(f"{queue_id}: {done[args.action]}", file=out)
            return
    # A running server took the request: wait (outside the lock) for it to say how it went.
    _await_outcome(path, name, f"{args.action} {queue_id}" if queue_id else args.action, args, out)


def _await_outcome(path: str, name: str, what: str, args: argparse.Namespace, out: TextIO) -> None:
    from .relay.control import DONE, outcome

    result = outcome(path, name, max(0.0, args.wait))
    if result is None:
        raise CommandError(
            f"{what}: requested; the running server has not answered in {args.wait:g} s "
            "(it applies the request when it gets to it)"
        )
    if result not in DONE.values():
        raise CommandError(f"{what}: {result}")
    print(f"{what}: {result} (running server)", file=out)


_HANDLERS = {
    ("user", "add"): _user_add,
    ("user", "passwd"): _user_passwd,
    ("user", "del"): _user_del,
    ("user", "list"): _user_list,
    ("alias", "add"): _alias_add,
    ("alias", "del"): _alias_del,
    ("alias", "list"): _alias_list,
    ("check-config", None): _check_config,
    ("queue", "list"): _queue_list,
    ("queue", "show"): _queue_show,
    ("queue", "flush"): _queue_act,
    ("queue", "retry"): _queue_act,
    ("queue", "delete"): _queue_act,
    ("queue", "bounce"): _queue_act,
}


def run() -> None:
    """Console entry point."""
    sys.exit(main())
