"""Built-in actions inside real runs: shell, http, sql, python."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from prefect_sqlalchemy import SqlAlchemyConnector

from tests.flows.factories import flow_run_id, run_workflow, specification, task_runs, workflow
from tests.support.servers import QuietHandler, serve_http

pytestmark = pytest.mark.anyio


class _Handler(QuietHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/missing"):
            self.reply(404, "text/plain", b"nothing here")
        else:
            body = json.dumps({"path": self.path, "ok": True}).encode()
            self.reply(200, "application/json", body)

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        received = json.loads(self.rfile.read(length))
        self.reply(201, "application/json", json.dumps({"received": received}).encode())


@pytest.fixture
def http_url() -> Iterator[str]:
    """A local HTTP server on a free port."""
    with serve_http(_Handler) as url:
        yield url


async def test_shell_output_env_cwd_and_child_usage(prefect_api: object, tmp_path: Path) -> None:
    script = "import os, sys; print(os.environ['GREETING'], os.getcwd()); print('warn', file=sys.stderr)"
    wf = workflow(
        [
            {
                "id": "say",
                "uses": "shell",
                "with": {
                    "argv": [sys.executable, "-c", script],
                    "env": {"GREETING": "hello"},
                    "cwd": str(tmp_path),
                },
            },
            {
                "id": "echo",
                "uses": "noop",
                "needs": ["say"],
                "with": {"output": "${{ tasks.say.output.stdout }}"},
            },
        ]
    )

    state = await run_workflow(wf)

    assert state.is_completed(), state.message
    outputs = await state.aresult()
    assert outputs["say"]["returncode"] == 0
    assert outputs["say"]["stdout"].strip() == f"hello {tmp_path}"
    assert outputs["say"]["stderr"].strip() == "warn"
    assert outputs["echo"] == outputs["say"]["stdout"]


async def test_shell_non_zero_exit_fails_with_the_last_stderr_line(prefect_api: object) -> None:
    argv = [sys.executable, "-c", "import sys; print('bad input', file=sys.stderr); sys.exit(3)"]
    wf = workflow([{"id": "check", "uses": "shell", "with": {"argv": argv}}])

    state = await run_workflow(wf)

    assert state.is_failed()
    assert (
        state.message
        == f"task 'check' failed: ShellCommandError: '{sys.executable}' exited with code 3: bad input"
    )


async def test_shell_own_timeout_kills_the_command(prefect_api: object) -> None:
    wf = workflow(
        [{"id": "hang", "uses": "shell", "with": {"argv": ["sleep", "30"], "timeout_seconds": 0.5}}]
    )

    state = await run_workflow(wf)

    assert state.is_failed()
    assert "'sleep' timed out after 0.5s and was killed" in state.message
    runs = await task_runs(flow_run_id(state), expected=1)
    assert runs["hang"].state.name == "TimedOut"


async def test_shell_missing_program_is_reported(prefect_api: object) -> None:
    wf = workflow([{"id": "nope", "uses": "shell", "with": {"argv": ["no-such-program-xyz"]}}])

    state = await run_workflow(wf)

    assert state.is_failed()
    assert "cannot start 'no-such-program-xyz'" in state.message


async def test_http_get_json_and_post(prefect_api: object, http_url: str) -> None:
    spec = specification({"type": "object", "properties": {"base": {"type": "string"}}, "required": ["base"]})
    wf = workflow(
        [
            {"id": "get", "uses": "http", "with": {"url": "${{ params.base }}/items", "params": {"page": 2}}},
            {
                "id": "post",
                "uses": "http",
                "needs": ["get"],
                "with": {
                    "method": "post",
                    "url": "${{ params.base }}/items",
                    "expect_status": 201,
                    "json": {"seen": "${{ tasks.get.output.json.path }}"},
                },
            },
        ]
    )

    state = await run_workflow(wf, spec, base=http_url)

    assert state.is_completed(), state.message
    outputs = await state.aresult()
    assert outputs["get"]["status"] == 200
    assert outputs["get"]["json"] == {"path": "/items?page=2", "ok": True}
    assert outputs["post"]["json"] == {"received": {"seen": "/items?page=2"}}


async def test_http_unexpected_status_fails_the_task(prefect_api: object, http_url: str) -> None:
    wf = workflow([{"id": "fetch", "uses": "http", "with": {"url": f"{http_url}/missing"}}])

    state = await run_workflow(wf)

    assert state.is_failed()
    assert state.message == (
        f"task 'fetch' failed: HttpStatusError: GET {http_url}/missing returned 404, "
        "expected 2xx: nothing here"
    )


async def test_python_action_awaits_coroutine_functions(prefect_api: object) -> None:
    wf = workflow(
        [
            {
                "id": "echo",
                "uses": "python",
                "with": {"callable": "tests.flows.helpers:async_echo", "args": [{"a": [1, 2]}]},
            }
        ]
    )

    state = await run_workflow(wf)

    assert state.is_completed(), state.message
    assert (await state.aresult())["echo"] == {"a": [1, 2]}


async def test_python_action_missing_callable_is_reported(prefect_api: object) -> None:
    wf = workflow([{"id": "x", "uses": "python", "with": {"callable": "tests.flows.helpers:not_there"}}])

    state = await run_workflow(wf)

    assert state.is_failed()
    assert state.message == (
        "task 'x' failed: ActionError: module 'tests.flows.helpers' has no attribute 'not_there'"
    )


async def test_rendered_input_of_the_wrong_type_fails_without_retry(prefect_api: object) -> None:
    wf = workflow(
        [
            {"id": "n", "uses": "noop", "with": {"output": 5}},
            {
                "id": "wait",
                "uses": "sleep",
                "needs": ["n"],
                "retries": 2,
                "with": {"seconds": "${{ 'soon' }}"},
            },
        ]
    )

    state = await run_workflow(wf)

    assert state.is_failed()
    assert state.message.startswith(
        "task 'wait' failed: ActionInputError: invalid inputs for action 'sleep': with.seconds"
    )
    runs = await task_runs(flow_run_id(state), expected=2)
    assert runs["wait"].run_count == 1


async def test_sql_task_against_postgres(prefect_api: object, pg_url: str) -> None:
    url = "postgresql+psycopg://" + pg_url.split("://", 1)[1]
    await SqlAlchemyConnector(connection_info=url).asave("warehouse", overwrite=True)
    spec = specification({"type": "object", "properties": {"region": {"type": "string", "default": "eu"}}})
    wf = workflow(
        [
            {
                "id": "create",
                "uses": "sql",
                "with": {
                    "block": "warehouse",
                    "fetch": "none",
                    "statement": "CREATE TABLE IF NOT EXISTS sales (region text, amount int)",
                },
            },
            {
                "id": "insert",
                "uses": "sql",
                "needs": ["create"],
                "for_each": [10, 20, 5],
                "with": {
                    "block": "warehouse",
                    "fetch": "none",
                    "statement": "INSERT INTO sales VALUES (:region, :amount)",
                    "parameters": {"region": "${{ params.region }}", "amount": "${{ item }}"},
                },
            },
            {
                "id": "total",
                "uses": "sql",
                "needs": ["insert"],
                "with": {
                    "block": "warehouse",
                    "fetch": "one",
                    "statement": (
                        "SELECT region, sum(amount) AS total FROM sales WHERE region = :r GROUP BY region"
                    ),
                    "parameters": {"r": "${{ params.region }}"},
                },
            },
            {
                "id": "rows",
                "uses": "sql",
                "needs": ["insert"],
                "with": {"block": "warehouse", "statement": "SELECT amount FROM sales ORDER BY amount"},
            },
        ]
    )

    state = await run_workflow(wf, spec)

    assert state.is_completed(), state.message
    outputs = await state.aresult()
    assert outputs["insert"] == [1, 1, 1]
    assert outputs["total"] == {"region": "eu", "total": 35}
    assert outputs["rows"] == [{"amount": 5}, {"amount": 10}, {"amount": 20}]


async def test_sql_error_and_missing_block_are_reported(prefect_api: object, pg_url: str) -> None:
    url = "postgresql+psycopg://" + pg_url.split("://", 1)[1]
    await SqlAlchemyConnector(connection_info=url).asave("warehouse", overwrite=True)
    wf = workflow(
        [
            {
                "id": "bad",
                "uses": "sql",
                "with": {"block": "warehouse", "statement": "SELECT * FROM no_such_table"},
            },
            {"id": "lost", "uses": "sql", "with": {"block": "nowhere", "statement": "SELECT 1"}},
        ]
    )

    state = await run_workflow(wf)

    assert state.is_failed()
    assert (
        "task 'bad' failed: SqlActionError: statement failed: relation \"no_such_table\" does not exist"
        in state.message
    )
    assert "task 'lost' failed: SqlActionError: no SqlAlchemyConnector block named 'nowhere'" in state.message


async def test_task_timeout_kills_a_running_shell_command(prefect_api: object, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    argv = ["sh", "-c", f"echo $$ > {pid_file}; exec sleep 30"]
    wf = workflow([{"id": "hang", "uses": "shell", "timeout_seconds": 1, "with": {"argv": argv}}])

    state = await run_workflow(wf)

    assert state.is_failed()
    assert state.message == "task 'hang' failed: Task run exceeded timeout of 1.0 second(s)"
    pid = int(pid_file.read_text())
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        await anyio.sleep(0.1)
    else:
        pytest.fail(f"command {pid} still runs after its task timed out")
