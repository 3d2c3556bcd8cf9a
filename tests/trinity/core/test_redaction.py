"""Masking credentials in URLs and given secrets inside larger strings."""

from __future__ import annotations

import json
import logging
from urllib.parse import quote

import pytest
from prefect.settings import PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW, temporary_settings

from trinity.core.redaction import (
    MASK,
    RedactingFilter,
    hold_secrets,
    install_log_redaction,
    redact,
    redact_held,
    redact_urls,
    redact_value,
    release_secrets,
    secret_texts,
    shorten,
)


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
        # Keys that only contain a secret word are data: the URL must keep working.
        ("https://h/?design=blue&author=bob&bypass=1", "https://h/?design=blue&author=bob&bypass=1"),
        (
            "https://h/?access_token=t1&X-Amz-Credential=c1",
            "https://h/?access_token=***&X-Amz-Credential=***",
        ),
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


def test_held_secrets_are_masked_inside_larger_strings_until_released() -> None:
    hold_secrets(["s3cr3t-value", "abc"])  # too short to search for: left alone
    try:
        text = "user=app;pw=s3cr3t-value;db=postgresql://a:b@h/x;s3cr3t-values"
        assert redact_held(text) == f"user=app;pw={MASK};db=postgresql://a:{MASK}@h/x;{MASK}s"
        assert redact_held("abc") == "abc"
        nested = {"out": ["x s3cr3t-value y", 3, None], "n": "https://t0ken@h/"}
        assert redact_value(nested) == {"out": [f"x {MASK} y", 3, None], "n": f"https://{MASK}@h/"}
    finally:
        release_secrets(["s3cr3t-value", "abc"])
    assert redact_held("pw=s3cr3t-value") == "pw=s3cr3t-value"


def test_a_secret_held_twice_stays_masked_until_both_release_it() -> None:
    hold_secrets(["shared-secret"])
    hold_secrets(["shared-secret"])
    release_secrets(["shared-secret"])
    assert redact_held("x shared-secret") == f"x {MASK}"
    release_secrets(["shared-secret"])
    assert redact_held("x shared-secret") == "x shared-secret"


def test_secret_texts_of_structured_values() -> None:
    assert secret_texts({"user": "u", "key": ["k1", 42]}) == ["u", "k1", "42"]
    assert secret_texts(None) == []


def test_escaped_and_url_encoded_forms_of_a_secret_are_masked() -> None:
    secret = 'p@ss "w\\rd"/x'
    texts = secret_texts(secret)
    for shown in (json.dumps({"pw": secret}), repr(secret), f"https://h/?q={quote(secret, safe='')}"):
        masked = redact(shown, texts)
        assert "ss" not in masked, masked
        assert MASK in masked, masked


def test_installed_redaction_masks_run_log_lines_and_their_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    install_log_redaction()
    logger = logging.getLogger("prefect.task_runs")
    hold_secrets(["tb-secret-1"])
    # Outside a run, Prefect's API handler on this logger (when an earlier test configured it)
    # warns that it has no flow run to send the line to.
    ignore = {PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW: "ignore"}
    try:
        with temporary_settings(ignore), caplog.at_level(logging.INFO, logger="prefect.task_runs"):
            try:
                raise ValueError("could not log in with tb-secret-1")
            except ValueError:
                logger.exception("task failed for tb-secret-1")
    finally:
        release_secrets(["tb-secret-1"])
    [record] = caplog.records
    assert record.getMessage() == f"task failed for {MASK}"
    assert record.exc_text is not None
    assert f"could not log in with {MASK}" in record.exc_text
    assert "tb-secret-1" not in caplog.text


def test_a_log_call_whose_arguments_do_not_fit_does_not_raise_through_the_filter() -> None:
    record = logging.LogRecord("trinity", logging.WARNING, __file__, 1, "a %s %s", (1,), None)
    assert RedactingFilter(["s3cret"]).filter(record)
