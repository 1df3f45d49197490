"""Helpers for tests that drive external programs (mbsync, swaks, curl...)."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile

from twisted.trial.unittest import SkipTest


def require_tool(name: str) -> str:
    """
    Return the path of program C{name}.

    Missing, the test is skipped on a developer's machine, but fails where
    C{MAILSTACK_REQUIRE_TOOLS} is set (CI installs every tool, so a skip there would hide a gap).
    """
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (apt-get install the package that provides it)"
        if os.environ.get("MAILSTACK_REQUIRE_TOOLS"):
            raise AssertionError(message)
        raise SkipTest(message)
    return path


@functools.cache
def scratch_dir(prefix: str) -> str:
    """
    One temporary directory per C{prefix} for this test process, removed when it exits: for
    harnesses built many times (spool files carry unique names, so sharing it is safe).
    """
    path = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path
