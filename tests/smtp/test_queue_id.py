"""Queue ids: sortable by time, unique, and never shared by a forked child and its parent."""

from __future__ import annotations

import os

from twisted_mail_stack.smtp.delivery import new_queue_id


def test_time_first_then_random_hex() -> None:
    qid = new_queue_id(1_700_000_000.123)
    assert len(qid) == 23 and int(qid, 16) >= 0
    assert qid.startswith(f"{1_700_000_000_123:011X}")
    assert new_queue_id(1_700_000_000.122) < new_queue_id(1_700_000_000.124)


def test_unique_within_one_millisecond() -> None:
    ids = {new_queue_id(1_700_000_000.0) for _ in range(20_000)}
    assert len(ids) == 20_000


def test_forked_child_draws_other_ids() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        try:
            os.write(write, " ".join(new_queue_id(1.0) for _ in range(5)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        child = f.read().decode().split()
    os.waitpid(pid, 0)
    parent = [new_queue_id(1.0) for _ in range(5)]
    assert len(child) == 5
    assert not set(child) & set(parent)
