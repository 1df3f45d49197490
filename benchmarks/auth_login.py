"""
Logins per second through PasswordChecker: cold (scrypt every time) and cached.

Run: flock /tmp/bench.lock python benchmarks/auth_login.py [--logins N] [--concurrency C]
Uses the real scrypt cost (ln=14) and a dedicated pool of 2 threads, as the server does.
"""

from __future__ import annotations

import argparse
import time

from twisted.cred.credentials import UsernamePassword
from twisted.internet import defer, task
from twisted.python.threadpool import ThreadPool

from twisted_mail_stack.auth.cache import LoginCache
from twisted_mail_stack.auth.checker import PasswordChecker
from twisted_mail_stack.auth.userdb import UserDB


async def measure(reactor: object, logins: int, concurrency: int) -> None:
    userdb = UserDB()
    users = [f"u{i}@example.org" for i in range(concurrency)]
    for user in users:
        userdb.add(user, "pw-" + user)
    pool = ThreadPool(0, 2, name="bench-auth")
    pool.start()
    try:
        for label, cache in (
            ("cold (ttl 0)", LoginCache(ttl=0)),
            ("cached", LoginCache(ttl=300)),
        ):
            checker = PasswordChecker(userdb, reactor=reactor, threadpool=pool, cache=cache)
            # Warm the cache (and the threads): one login per user, not counted.
            await defer.gatherResults(
                [
                    checker.requestAvatarId(UsernamePassword(u.encode(), f"pw-{u}".encode()))
                    for u in users
                ]
            )

            async def client(checker: PasswordChecker, user: str, n: int) -> None:
                credentials = UsernamePassword(user.encode(), f"pw-{user}".encode())
                for _ in range(n):
                    await checker.requestAvatarId(credentials)

            per_client = max(1, logins // concurrency)
            start = time.perf_counter()
            await defer.gatherResults(
                [defer.Deferred.fromCoroutine(client(checker, u, per_client)) for u in users]
            )
            elapsed = time.perf_counter() - start
            total = per_client * concurrency
            print(
                f"{label:14} {total:7d} logins in {elapsed:7.3f} s: {total / elapsed:10.1f}/s, "
                f"{elapsed / total * 1000:8.3f} ms each (concurrency {concurrency})"
            )
    finally:
        pool.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--logins", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    task.react(
        lambda reactor: defer.Deferred.fromCoroutine(
            measure(reactor, args.logins, args.concurrency)
        )
    )


if __name__ == "__main__":
    main()
