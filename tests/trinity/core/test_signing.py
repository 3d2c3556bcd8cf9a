"""Definition signatures: the canonical form, the check, and the missing key."""

from __future__ import annotations

from pathlib import Path

import pytest

from trinity.core.config import configured_definition_key, load_settings
from trinity.core.signing import (
    DefinitionChangedError,
    DefinitionKeyMissingError,
    canonical_definition,
    check_definition,
    require_key,
    sign_definition,
)

WORKFLOW = {"name": "w", "version": "1.0.0", "tasks": [{"id": "a", "uses": "noop"}]}
SPEC = {"name": "s", "version": "1.0.0", "parameters": {"type": "object"}}
FIELDS = {"name": "w", "version": "1.0.0", "workflow": WORKFLOW, "specification": SPEC}


def test_the_canonical_form_ignores_key_order_and_spacing() -> None:
    reordered = {"specification": dict(reversed(SPEC.items())), "workflow": dict(reversed(WORKFLOW.items()))}
    assert canonical_definition(name="w", version="1.0.0", **reordered) == canonical_definition(**FIELDS)
    assert b" " not in canonical_definition(**FIELDS)


def test_a_signature_checks_under_its_key_only() -> None:
    signature = sign_definition("key-one", **FIELDS)
    check_definition("key-one", signature, label="w-123", **FIELDS)
    with pytest.raises(DefinitionChangedError, match="signature does not match"):
        check_definition("key-two", signature, label="w-123", **FIELDS)


@pytest.mark.parametrize(
    "change",
    [
        {"workflow": {**WORKFLOW, "tasks": [{"id": "a", "uses": "shell", "with": {"argv": ["sh"]}}]}},
        {"specification": {**SPEC, "parameters": {"type": "object", "properties": {"x": {}}}}},
        {"name": "other"},
        {"version": "1.0.1"},
    ],
)
def test_any_change_breaks_the_signature(change: dict[str, object]) -> None:
    signature = sign_definition("key", **FIELDS)
    changed = {**FIELDS, **change}
    with pytest.raises(DefinitionChangedError) as caught:
        check_definition("key", signature, label="blk", **changed)  # type: ignore[arg-type]
    assert str(caught.value).startswith(f"definition blk (workflow {changed['name']} ")
    assert "was changed outside Trinity" in str(caught.value)


def test_an_unsigned_definition_is_refused() -> None:
    with pytest.raises(DefinitionChangedError, match="carries no signature"):
        check_definition("key", "", label="blk", **FIELDS)


def test_no_key_is_one_line_naming_the_setting_and_its_variable() -> None:
    for blank in (None, "", "  "):
        with pytest.raises(DefinitionKeyMissingError) as caught:
            require_key(blank)
        assert "security.definition_key" in str(caught.value)
        assert "TRINITY_DEFINITION_KEY" in str(caught.value)
        assert "\n" not in str(caught.value)
    with pytest.raises(DefinitionKeyMissingError):
        configured_definition_key(load_settings(env={}))


def test_the_key_resolves_from_the_environment_and_the_file(tmp_path: Path) -> None:
    assert load_settings(env={"TRINITY_DEFINITION_KEY": "from-env"}).security.definition_key == "from-env"
    path = tmp_path / "trinity.config.yml"
    path.write_text("security:\n  definition_key: from-file\n")
    assert configured_definition_key(load_settings(path, env={})) == "from-file"
    assert (
        load_settings(path, env={"TRINITY_DEFINITION_KEY": "env-wins"}).security.definition_key == "env-wins"
    )
