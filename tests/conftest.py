"""Run every test with a scratch working directory, so trial's mktemp() never writes into the checkout."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _scratch_cwd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    scratch = tmp_path_factory.mktemp("cwd")
    before = os.getcwd()
    os.chdir(scratch)
    try:
        yield scratch
    finally:
        os.chdir(before)
