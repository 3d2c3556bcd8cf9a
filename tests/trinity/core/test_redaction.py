"""Masking credentials in URLs and given secrets inside larger strings."""

from __future__ import annotations

import logging

import pytest

from trinity.core.redaction import MASK, RedactingFilter, redact, redact_urls, shorten


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://app:s3cret@db:5432/x", "postgresql://app:***@db:5432/x"),
        ("failed: GET https://u:p%40ss@host/a?b=1 -> 500", "failed: GET https://u:***@host/a?b=1 -> 500"),
        ("https://ghp_token123@github.com/o/r.git", "https://***@github.com/o/r.git"),
        ("redis://:pw@cache:6379/0", "redis://:***@cache:6379/0"),
        ("https://h/p?token=abc123&page=2", "https://h/p?token=***&page=2"),
        (
            "https://h/p?page=2&api_key=k-1&X-Amz-Signature=ff",
            "https://h/p?page=2&api_key=***&X-Amz-Signature=***",
        ),
        ("mailto:someone@example.com and a@b", "mailto:someone@example.com and a@b"),
        ("https://example.com/a@b", "https://example.com/a@b"),
        ("no urls here", "no urls here"),
    ],
)
def test_credentials_in_urls_are_masked(text: str, expected: str) -> None:
    assert redact_urls(text) == expected


def test_given_secrets_are_masked_inside_larger_strings() -> None:
    text = "login as admin with hunter22hunter22 (hunter22) from https://u:pw@h/"
    assert redact(text, ["hunter22", "hunter22hunter22", "pw"]) == (
        f"login as admin with {MASK} ({MASK}) from https://u:{MASK}@h/"
    )


def test_shorten() -> None:
    assert shorten("abc", 3) == "abc"
    assert shorten("abcdef", 4) == "abc…"


def test_logging_filter_masks_the_message(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redaction")
    logger.addFilter(RedactingFilter(["topsecret"]))
    with caplog.at_level(logging.INFO, logger="test.redaction"):
        logger.info("connecting to %s with %s", "postgresql://a:b@db/x", "topsecret")
    assert caplog.messages == ["connecting to postgresql://a:***@db/x with ***"]
