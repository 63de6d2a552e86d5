"""What a test does when something it needs is not installed: skip on a developer's machine, fail in CI."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """Whether we run in CI: ``CI`` is set to anything but "", "0", "false" or "no" (any case)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(message: str) -> NoReturn:
    """Fail the test in CI, where a missing tool is a broken setup; skip it with ``message`` elsewhere."""
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)
