"""What the secret-parameter tests look through: everything Prefect and Trinity keep of a run."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.client.schemas.responses import DeploymentResponse
from prefect.exceptions import ObjectNotFound

from specs.secrets import referenced_block
from tests.flows.factories import log_lines, task_runs
from trinity.core.tables import execution_logs
from trinity.core.urls import normalise_url

PASSWORD = "hunter2-Pa55word"
URL_PASSWORD = "url-pw-9931"
SOURCE = f"postgresql://app:{URL_PASSWORD}@db.internal/orders"
MASKED_SOURCE = "postgresql://app:***@db.internal/orders"
TOKEN = "tok-4f1e-named-secret"
CLEAR = (PASSWORD, URL_PASSWORD, TOKEN)
# What the run's log shows of the shell task's line, every secret masked.
MASKED_LINE = "login *** at postgresql://app:***@db.internal/orders with ***"

PARAMETERS = {
    "type": "object",
    "properties": {
        "password": {"type": "string", "format": "password", "minLength": 8},
        "source": {"type": "string"},
    },
    "required": ["password", "source"],
}


def secret_tasks(token_block: str) -> list[dict[str, Any]]:
    """Tasks that put every secret in a log line, a (cached, so stored) result and an error."""
    token = f"${{{{ secrets['{token_block}'] }}}}"
    login = 'echo "login $0 at $1 with $2"'
    refuse = 'echo "denied: $0 $1" >&2; exit 3'
    return [
        {
            "id": "connect",
            "uses": "shell",
            "with": {"argv": ["sh", "-c", login, "${{ params.password }}", "${{ params.source }}", token]},
        },
        {
            "id": "remember",
            "uses": "noop",
            "cache": {"expiry_seconds": 60},
            "with": {"output": f"pw=${{{{ params.password }}}} src=${{{{ params.source }}}} token={token}"},
        },
        {
            "id": "refuse",
            "uses": "shell",
            "needs": ["connect"],
            "with": {"argv": ["sh", "-c", refuse, "${{ params.password }}", token]},
        },
    ]


async def make_token_block() -> str:
    """A Secret block holding :data:`TOKEN`, as an operator would make it; its name."""
    name = f"sec-token-{uuid.uuid4().hex[:8]}"
    await Secret(value=TOKEN).asave(name=name)
    return name


async def prefect_records(flow_run_id: uuid.UUID, *, tasks: int) -> str:
    """Everything Prefect keeps of a run, as text: the flow run (parameters, state message), its
    task runs (state messages), stored task results, and its log lines (once the shell task's line
    has arrived). ``source`` is left out of the flow run's parameters: not declared a secret, it
    is handed to Prefect as given (its password is masked everywhere else)."""
    runs = await task_runs(flow_run_id, expected=tasks)
    parts: list[str] = []
    async with get_client() as client:
        flow_run = await client.read_flow_run(flow_run_id)
        assert flow_run.parameters.pop("source") == SOURCE
        parts.append(flow_run.model_dump_json())
        for task_run in runs.values():
            parts.append(task_run.model_dump_json())
            if task_run.state is not None and task_run.state.data is not None:  # a stored result
                parts.append(f"result of {task_run.name}: {await task_run.state.aresult()!r}")
    lines = await log_lines(flow_run_id, until="login")
    assert any(MASKED_LINE in line for line in lines), lines
    return "\n".join([*parts, *lines])


def secret_reference_of(parameters: dict[str, Any]) -> str:
    """The Secret block the run's password parameter refers to (fails when it is not a reference)."""
    block = referenced_block(parameters["password"])
    assert block is not None, parameters
    return block


async def read_deployment(deployment_id: uuid.UUID) -> DeploymentResponse:
    async with get_client() as client:
        return await client.read_deployment(deployment_id)


async def block_exists(name: str) -> bool:
    async with get_client() as client:
        try:
            await client.read_block_document_by_name(name, block_type_slug="secret")
        except ObjectNotFound:
            return False
    return True


def execution_log_rows(database_url: str, flow_run_id: uuid.UUID) -> list[dict[str, Any]]:
    engine = sa.create_engine(normalise_url(database_url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            query = sa.select(execution_logs).where(execution_logs.c.flow_run_id == flow_run_id)
            return [dict(row) for row in connection.execute(query).mappings()]
    finally:
        engine.dispose()


def assert_no_secret(text: str, what: str) -> None:
    found = [secret for secret in CLEAR if secret in text]
    assert not found, f"{what} holds {found}"
