"""Which parameter values the executor resolves as references to Secret blocks."""

from __future__ import annotations

from flows.run_secrets import resolvable_block
from specs.secrets import secret_reference


def test_only_blocks_made_for_a_run_are_resolved() -> None:
    assert resolvable_block(secret_reference("trinity-run-secret-0123abcd")) == "trinity-run-secret-0123abcd"
    # Naming another block (an admin's named Secret) must not read it: it is a value in clear.
    assert resolvable_block(secret_reference("prod-db-password")) is None
    assert resolvable_block("plain value") is None
