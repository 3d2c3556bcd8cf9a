"""Error signatures: variable parts out, the cause stays."""

from __future__ import annotations

import pandas as pd
import pytest

from analytics.signatures import NO_MESSAGE, error_signature, signatures


@pytest.mark.parametrize(
    ("message", "signature"),
    [
        (
            "ValueError: column 'amount' missing in /data/in/batch_12/part-3.csv (row 1832)",
            "ValueError: column <str> missing in <path> (row <n>)",
        ),
        (
            "KeyError: run 3f2b8c1e-9a4d-4c2b-8e1f-0a9b8c7d6e5f not found",
            "KeyError: run <uuid> not found",
        ),
        ("object at 0x7f3a9c2e1b40 is not callable", "object at <hex> is not callable"),
        ("digest deadbeef12345678 mismatch", "digest <hex> mismatch"),
        (
            "HTTPError: 503 Service Unavailable for url https://api.example.com/v1/items?page=3",
            "HTTPError: <n> Service Unavailable for url <url>",
        ),
        ("connect to 10.0.3.17:5432 refused", "connect to <ip> refused"),
        ("deadline at 2025-03-04T10:11:12Z passed", "deadline at <ts> passed"),
        ('file "C:\\data\\in\\x.txt" locked', "file <str> locked"),
        ("S3Error: timeout after 30.5s", "S3Error: timeout after <n>s"),
    ],
)
def test_error_signature_normalises_variable_parts(message: str, signature: str) -> None:
    assert error_signature(message) == signature


def test_variants_of_one_cause_share_a_signature() -> None:
    a = error_signature("TimeoutError: task 'load_7' took 301.2 s (limit 300)")
    b = error_signature("TimeoutError: task 'load_12' took 412 s (limit 300)")
    assert a == b


def test_traceback_signature_is_its_last_line() -> None:
    text = (
        "Traceback (most recent call last):\n"
        '  File "x.py", line 3, in f\n'
        "ZeroDivisionError: division by zero\n"
    )
    assert error_signature(text) == "ZeroDivisionError: division by zero"


def test_missing_messages_get_a_placeholder() -> None:
    assert error_signature(None) == NO_MESSAGE
    assert error_signature("   ") == NO_MESSAGE


def test_signatures_of_a_column_match_one_by_one() -> None:
    messages = pd.Series(["x 1", None, "x 2", "y /a/b"], dtype=object)
    assert signatures(messages).tolist() == ["x <n>", NO_MESSAGE, "x <n>", "y <path>"]
