"""Semantic versions and ranges."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from specs.versions import Version, VersionError, best_match, parse_range


@pytest.mark.parametrize(
    ("range_text", "inside", "outside"),
    [
        ("1.2.3", ["1.2.3"], ["1.2.4", "1.2.3-rc.1"]),
        ("=1.2.3", ["1.2.3"], ["1.2.2"]),
        ("^1.2.3", ["1.2.3", "1.9.0"], ["2.0.0", "1.2.2"]),
        ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0"]),
        ("^0.0.3", ["0.0.3"], ["0.0.4"]),
        ("^1", ["1.0.0", "1.99.0"], ["2.0.0"]),
        ("~1.2.3", ["1.2.3", "1.2.9"], ["1.3.0"]),
        ("~1", ["1.5.0"], ["2.0.0"]),
        (">=2.0.0,<3.0.0", ["2.0.0", "2.9.9"], ["3.0.0", "1.9.9"]),
        (">= 2.0.0 < 3", ["2.5.0"], ["3.0.0"]),
        (">1.2", ["1.3.0"], ["1.2.9"]),
        ("<=1.2", ["1.2.9"], ["1.3.0"]),
        ("1.x", ["1.0.0", "1.7.1"], ["2.0.0"]),
        ("*", ["0.0.1", "9.0.0"], ["1.0.0-alpha"]),
        ("^1.0.0 || ^3.0.0", ["1.1.0", "3.2.0"], ["2.0.0"]),
        ("!=1.0.1,^1.0.0", ["1.0.0", "1.0.2"], ["1.0.1"]),
        ("^1.1.0-rc.1", ["1.1.0-rc.2", "1.1.0", "1.2.0"], ["1.2.0-rc.1"]),
    ],
)
def test_ranges(range_text: str, inside: list[str], outside: list[str]) -> None:
    parsed = parse_range(range_text)
    assert all(parsed.contains(v) for v in inside), inside
    assert not any(parsed.contains(v) for v in outside), outside


@pytest.mark.parametrize("text", ["", "^^1", "1.2.3.4", ">=x", "~", "1.0.0-", "^1 ||", ">" * 300])
def test_invalid_ranges(text: str) -> None:
    with pytest.raises(VersionError):
        parse_range(text)


@pytest.mark.parametrize("text", ["1.0", "01.0.0", "v1.0.0", "1.0.0-01", ""])
def test_invalid_versions(text: str) -> None:
    with pytest.raises(VersionError, match=r"expected MAJOR\.MINOR\.PATCH"):
        Version.parse(text)


def test_precedence_follows_semver() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.10.0",
        "2.0.0",
    ]
    assert sorted(ordered, key=Version.parse) == ordered
    assert Version.parse("1.0.0+build.1") == Version.parse("1.0.0")


def test_best_match() -> None:
    versions = ["1.0.0", "1.4.0", "2.0.0", "not-a-version", "1.5.0-rc.1"]
    assert best_match(versions, "^1.0.0") == "1.4.0"
    assert best_match(versions, ">=3") is None


releases = st.tuples(*(st.integers(min_value=0, max_value=500),) * 3)


@given(releases)
def test_parse_and_str_round_trip(parts: tuple[int, int, int]) -> None:
    text = ".".join(map(str, parts))
    assert str(Version.parse(text)) == text
    assert Version.parse(text).release == parts


@given(releases, releases)
def test_release_order_is_tuple_order(a: tuple[int, int, int], b: tuple[int, int, int]) -> None:
    va, vb = Version(*a), Version(*b)
    assert (va < vb) == (a < b)
    assert (va == vb) == (a == b)


@given(releases, releases)
def test_caret_means_same_major_and_not_lower(
    base: tuple[int, int, int], other: tuple[int, int, int]
) -> None:
    if base[0] == 0:
        return
    inside = parse_range("^" + ".".join(map(str, base))).contains(".".join(map(str, other)))
    assert inside == (other[0] == base[0] and other >= base)


@given(releases, releases)
def test_tilde_means_same_minor_and_not_lower(
    base: tuple[int, int, int], other: tuple[int, int, int]
) -> None:
    inside = parse_range("~" + ".".join(map(str, base))).contains(".".join(map(str, other)))
    assert inside == (other[:2] == base[:2] and other >= base)
