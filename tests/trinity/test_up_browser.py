"""``trinity up`` end to end, checked in a real browser (Debian's Chromium driven by Playwright).

Starts the whole stack as a person would, opens the Prefect UI it serves (logging in with the
stack's Prefect auth string), finds the example workflow's deployment and its completed run, checks
that the run's task names are the spec's task ids and that the analytics artifact is there, runs the
banner's commands in a fresh shell, opens the API docs with every other host cut off, then stops the
stack and checks nothing is left.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import sync_playwright

from tests.support.servers import free_port
from tests.support.services import service_missing
from tests.support.shell import commands_in, run_in_clean_shell

CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The README's screenshot is refreshed only on request, so that a test run leaves the tree clean.
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
REFRESH_DOCS_SCREENSHOTS = os.environ.get("TRINITY_REFRESH_SCREENSHOTS") == "1"
DEMO_TASK_NAMES = {"per_region[0]", "per_region[1]", "per_region[2]", "combine", "announce"}

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def wait_for_line(path: Path, pattern: str, process: subprocess.Popen[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        match = re.search(pattern, text)
        if match:
            return match.group(0)
        if process.poll() is not None:
            pytest.fail(f"trinity up exited with {process.returncode}:\n{text[-3000:]}")
        time.sleep(1)
    pytest.fail(f"no line matching {pattern!r} within {timeout}s:\n{path.read_text()[-3000:]}")


def keep_local(route: Any, origin: str, elsewhere: list[str]) -> None:
    """Let requests to ``origin`` through; abort (and note) any other."""
    if route.request.url.startswith(origin + "/"):
        route.continue_()
    else:
        elsewhere.append(route.request.url)
        route.abort()


def pids_alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        status = Path(f"/proc/{pid}/status")
        if status.exists() and "zombie" not in status.read_text():
            alive.append(pid)
    return alive


# The whole stack's first start (server migrations, deployments, the first run) on a busy machine.
@pytest.mark.timeout(900)
def test_up_serves_the_demo_in_the_prefect_ui(tmp_path: Path) -> None:
    if CHROMIUM is None:
        service_missing("Debian's chromium is not installed (scripts/test installs it)")
    state = tmp_path / "state"
    out = tmp_path / "up.out"
    prefect_port, api_port = free_port(), free_port()
    trinity = [sys.executable, "-m", "trinity.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    argv = [*trinity, "up", "--state-dir", str(state), "--prefect-port", str(prefect_port)]
    argv += ["--api-port", str(api_port), "--worker-processes", "1"]
    with out.open("wb") as handle:
        up = subprocess.Popen(argv, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        run_url = wait_for_line(out, r"http://127\.0\.0\.1:\d+/runs/flow-run/[0-9a-f-]{36}", up, 600)
        wait_for_line(out, r"Trinity is up\.", up, 600)
        status = subprocess.run(
            [*trinity, "status", "--state-dir", str(state)], capture_output=True, text=True
        )
        assert status.returncode == 0, status.stdout + status.stderr
        assert "prefect-server" in status.stdout
        assert "trinity-worker" in status.stdout
        assert "performance report run" in out.read_text()
        assert "Completed" in out.read_text()
        # The banner's commands, pasted into a fresh shell (all but the one that stops the stack).
        pasted = [line for line in commands_in(out.read_text()) if " down " not in line]
        assert len(pasted) >= 4, out.read_text()[-3000:]
        (tmp_path / "home").mkdir()
        for line in pasted:
            result = run_in_clean_shell(line, home=tmp_path / "home", cwd=tmp_path)
            assert result.returncode == 0, f"{line}\n{result.stdout}{result.stderr}"

        ui = f"http://127.0.0.1:{prefect_port}"
        # Prefect is closed: without the stack's auth string its API answers 401.
        auth_string = json.loads((state / "secrets.json").read_text())["prefect_auth_string"]
        assert httpx.post(f"{ui}/api/deployments/filter", json={}, timeout=30).status_code == 401
        screenshots = DOCS_SCREENSHOTS if REFRESH_DOCS_SCREENSHOTS else tmp_path
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})

            # The UI asks for the auth string once (its login page), then keeps it.
            page.goto(ui, wait_until="networkidle")
            password = page.locator("input[type=password]").first
            password.wait_for(timeout=60_000)
            password.fill(auth_string)
            page.get_by_role("button", name="Login").first.click()
            page.wait_for_load_state("networkidle")

            page.goto(f"{ui}/deployments", wait_until="networkidle")
            page.get_by_text("regional-report").first.wait_for(timeout=60_000)
            page.screenshot(path=str(tmp_path / "deployments.png"))

            page.goto(run_url, wait_until="networkidle")
            page.get_by_text("Completed").first.wait_for(timeout=60_000)
            page.screenshot(path=str(screenshots / "demo-run.png"))
            page.get_by_text("Task Runs", exact=True).first.click()
            for name in DEMO_TASK_NAMES:
                page.get_by_text(name, exact=True).first.wait_for(timeout=60_000)

            page.goto(f"{ui}/artifacts", wait_until="networkidle")
            page.get_by_text("trinity-performance-report").first.wait_for(timeout=60_000)
            page.screenshot(path=str(tmp_path / "artifacts.png"))

            # The API docs with every other host unreachable: Swagger UI still renders.
            api = f"http://127.0.0.1:{api_port}"
            elsewhere: list[str] = []
            docs = browser.new_page(viewport={"width": 1400, "height": 900})
            docs.route("**/*", lambda route: keep_local(route, api, elsewhere))
            docs.goto(f"{api}/docs", wait_until="networkidle")
            docs.locator(".swagger-ui .info .title").first.wait_for(state="visible", timeout=60_000)
            assert docs.url == f"{api}/api/v1/docs"
            assert "Trinity" in docs.locator(".swagger-ui .info .title").first.inner_text()
            assert elsewhere == []
            docs.screenshot(path=str(tmp_path / "api-docs.png"))
            browser.close()
    finally:
        children = []
        status_file = state / "status.json"
        if status_file.exists():
            children = [c["pid"] for c in json.loads(status_file.read_text())["children"] if c.get("pid")]
        down = subprocess.run([*trinity, "down", "--state-dir", str(state)], capture_output=True, text=True)
        try:
            up.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, 9)
            up.wait()
    assert down.returncode == 0, down.stdout + down.stderr
    assert up.returncode == 0, out.read_text()[-2000:]
    assert children, "status.json named no children"
    assert pids_alive(children) == []
