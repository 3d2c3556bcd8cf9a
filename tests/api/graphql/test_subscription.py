"""``runEvents`` over graphql-transport-ws with a real client, on a real run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from tests.api.graphql.support import Keys
from tests.api.live_support import (
    active_fanout,
    assert_complete_stream,
    assert_fanout_story,
    execute,
    run_parameters,
    start_flow_run,
)
from tests.api.support import ApiServer
from tests.support.servers import PrefectServer

SUBSCRIPTION = """
subscription($run: ID, $after: String) {
  runEvents(runId: $run, after: $after) {
    id type timestamp task state message
    state_name: stateName
    task_run: taskRun
    flow_run_id: flowRunId
  }
}"""


def subscribe(api: ApiServer, key: str, run_id: str) -> list[dict[str, Any]]:
    """Every event of the run's subscription until the server completes it."""
    url = api.url.replace("http", "ws", 1) + "/api/v1/graphql"
    transport = WebsocketsTransport(
        url=url, init_payload={"X-API-Key": key}, subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL]
    )
    request = GraphQLRequest(SUBSCRIPTION, variable_values={"run": run_id})
    client = Client(transport=transport, execute_timeout=120)
    return [result["runEvents"] for result in client.subscribe(request)]


def test_a_viewer_subscribes_to_a_run_and_gets_every_event_once_in_order(
    api: ApiServer, keys: Keys, live_prefect: PrefectServer, tmp_path: Path
) -> None:
    workflow = active_fanout(api, "gql-subscription")
    run = execute(api, workflow["id"], run_parameters(tmp_path))
    process = start_flow_run(live_prefect, api, run["flow_run_id"])
    try:
        received = subscribe(api, keys.viewer, run["id"])
    finally:
        assert process.wait(timeout=120) == 0
    assert {e["type"] for e in received} == {"flow_run.state", "task_run.state", "log"}
    assert_fanout_story(received)
    assert_complete_stream(received, live_prefect, run["flow_run_id"])
