"""Helpers for tests that drive external programs (mbsync, swaks, curl...)."""

from __future__ import annotations

import os
import shutil

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
