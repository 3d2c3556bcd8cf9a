"""An installed distribution that adds actions through the ``trinity.actions`` entry-point group."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from specs.actions import refresh_actions

_PACKAGE = """\
from pydantic import BaseModel, ConfigDict

class Inputs(BaseModel):
    model_config = ConfigDict(extra='forbid')
    channel: str

class Notify:
    name = 'notify'
    inputs = Inputs

class Echo:
    name = 'echo'
    inputs = Inputs

    async def run(self, inputs, context):
        return {'channel': inputs.channel}

notify = Notify()
echo = Echo()
"""


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Three plugin actions: ``notify`` (inputs, no ``run``), ``echo`` (runnable) and ``broken``."""
    package = tmp_path / "trinity_test_plugin"
    package.mkdir()
    (package / "__init__.py").write_text(_PACKAGE)
    info = tmp_path / "trinity_test_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: trinity-test-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[trinity.actions]\n"
        "notify = trinity_test_plugin:notify\n"
        "echo = trinity_test_plugin:echo\n"
        "broken = trinity_test_plugin:missing\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    refresh_actions()
    yield
    refresh_actions()
