"""Async tests on asyncio, with Prefect's events worker reset between tests (see tests/flows)."""

from tests.flows.conftest import anyio_backend, fresh_events_worker

__all__ = ["anyio_backend", "fresh_events_worker"]
