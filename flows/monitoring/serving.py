"""``trinity worker --metrics-port``: the worker's Prometheus endpoint.

The worker and its executor processes share their figures through prometheus_client's
multiprocess files (``PROMETHEUS_MULTIPROC_DIR``, set by ``trinity worker`` before anything
imports the client); this endpoint adds them up (:func:`trinity.core.metrics.registry`).
"""

from __future__ import annotations

from prometheus_client import start_http_server

from trinity.core import metrics


def serve_worker_metrics(host: str, port: int) -> str:
    """Serve ``/metrics`` on ``host:port`` from a daemon thread; returns its URL. Raises OSError."""
    start_http_server(port, addr=host, registry=metrics.registry() or metrics.OURS)
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://{shown}:{port}/metrics"
