"""``trinity.core`` is importable by every layer because it imports none of them."""

from __future__ import annotations

import json
import subprocess
import sys

OURS = {"specs", "flows", "blocks", "deployments", "analytics", "api", "trinity"}
CORE = ["trinity.core.config", "trinity.core.settings", "trinity.core.tables", "trinity.core.types"]
CORE += ["trinity.core.urls", "trinity.core.signing"]


def _modules_after(imports: list[str]) -> list[str]:
    """The modules a fresh interpreter holds after these imports."""
    code = "; ".join(f"import {name}" for name in imports)
    code += "; import json, sys; print(json.dumps(sorted(sys.modules)))"
    found: list[str] = json.loads(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    )
    return found


def test_the_core_imports_no_other_trinity_package() -> None:
    loaded = _modules_after(CORE)
    ours = [name for name in loaded if name.split(".")[0] in OURS]
    assert ours
    assert [name for name in ours if name != "trinity" and not name.startswith("trinity.core")] == []


def test_resolving_settings_does_not_load_sqlalchemy() -> None:
    # Every command resolves settings; SQLAlchemy alone costs most of a second to import.
    loaded = _modules_after(["trinity.core.config"])
    assert "pydantic" in loaded
    assert "sqlalchemy" not in loaded
