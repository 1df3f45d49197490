"""Shared fixtures of the auth tests."""

from __future__ import annotations

import pytest

from twisted_mail_stack.auth import passwords


@pytest.fixture
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash new passwords with n=2**4: the tests of files need not pay 50 ms per user."""
    monkeypatch.setattr(passwords, "_LN", 4)
