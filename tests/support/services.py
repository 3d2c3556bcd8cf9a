"""What a test does when a service it needs is missing: skip locally, fail under CI.

CI (``CI=true``) must run every test, so there a missing PostgreSQL, Redis or Chromium is a
failure, not a skip that nobody reads.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def service_missing(message: str) -> NoReturn:
    """Skip the calling test with ``message``, or fail it under ``CI=true``."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)
