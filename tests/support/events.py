"""Reading Prefect's event feed, and a local HTTP server that records the webhooks it receives."""

from __future__ import annotations

import datetime as dt
import json
import queue
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.servers import QuietHandler, serve_http


def read_events(
    api_url: str, *, names: list[str], resource_id: str | None = None, since: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """Events from ``POST /api/events/filter`` (newest first), by name and primary resource."""
    event_filter: dict[str, Any] = {"event": {"name": names}}
    if resource_id is not None:
        event_filter["resource"] = {"id": [resource_id]}
    if since is not None:
        event_filter["occurred"] = {"since": since.isoformat()}
    response = httpx.post(f"{api_url}/events/filter", json={"filter": event_filter, "limit": 50}, timeout=10)
    response.raise_for_status()
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def wait_for(check: Callable[[], Any], *, timeout: float, what: str, every: float = 0.5) -> Any:
    """Call ``check`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout:g} s")
        time.sleep(every)


@dataclass
class Webhook:
    """A local HTTP server's address and the JSON bodies POSTed to it."""

    url: str
    received: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)

    def next(self, timeout: float) -> dict[str, Any]:
        """The next body received, failing after ``timeout`` seconds."""
        try:
            return self.received.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the webhook at {self.url} received nothing in {timeout:g} s") from None


@contextmanager
def webhook_server() -> Iterator[Webhook]:
    """A real HTTP server on 127.0.0.1 answering 200 to every POST and keeping its JSON body."""
    received: queue.Queue[dict[str, Any]] = queue.Queue()

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            try:
                received.put(json.loads(body or b"{}"))
            except ValueError:
                received.put({"raw": body.decode(errors="replace")})
            self.send_response(200)
            self.end_headers()

    with serve_http(Handler) as url:
        yield Webhook(url=f"{url}/hook", received=received)
