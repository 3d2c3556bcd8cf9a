"""Writers that put records into InfluxDB and Elasticsearch, through the official clients.

* :class:`InfluxDBWriter` -- points built with ``influxdb-client``'s :class:`~influxdb_client.Point`;
  ``api: v1`` POSTs their line protocol to 1.x's ``/write`` (``db``, ``rp``, ``precision``, ``u``,
  ``p``), ``api: v2`` sends them through the client's write API (``/api/v2/write``).
* :class:`ElasticsearchWriter` -- documents through the ``elasticsearch`` client's bulk helper into
  daily indices ``<prefix>-runs-YYYY.MM.DD`` and ``<prefix>-logs-YYYY.MM.DD``, after installing the
  index templates (:func:`index_templates`) once per writer.

A writer raises :class:`SinkError` (one line saying what failed) and never retries by itself: the
caller decides (the live sender backs off, the harvest leaves its cursor where it was).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

import httpx
from elasticsearch import Elasticsearch, helpers
from elasticsearch import exceptions as es_exceptions
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS

from blocks.sink_records import TAG_KEYS, LogLine, Record, RunMetric, utc
from trinity.core.sink_settings import ElasticsearchSinkSettings, InfluxDBSinkSettings

_ERROR_CHARS = 1000
# The transport logs every failed attempt of a node; the live sender says it once.
logging.getLogger("elastic_transport.node_pool").setLevel(logging.ERROR)
_V1_PRECISION = {"ns": "n", "us": "u", "ms": "ms", "s": "s"}
_DIVISOR = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_WRITE_PRECISION = {"ns": WritePrecision.NS, "us": WritePrecision.US, "ms": WritePrecision.MS}
_WRITE_PRECISION |= {"s": WritePrecision.S}


class SinkError(Exception):
    """A sink did not take a batch; the message says which sink and why, in one line."""


class SinkWriter(Protocol):
    """What the live sender and the harvest write through."""

    name: str

    def write(self, records: Sequence[Record]) -> int:
        """Write the records this sink takes; returns how many. Raises :class:`SinkError`."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class InfluxDBWriter:
    """Task-run and flow-run points to InfluxDB (log lines are not metrics: skipped)."""

    def __init__(self, settings: InfluxDBSinkSettings) -> None:
        self.settings = settings
        self.name = "influxdb"
        self._http: httpx.Client | None = None
        self._client: InfluxDBClient | None = None

    def points(self, records: Sequence[Record]) -> list[Point]:
        """The points of the run records, timed in the configured precision."""
        divisor = _DIVISOR[self.settings.precision]
        precision = _WRITE_PRECISION[self.settings.precision]
        points = []
        for record in records:
            if not isinstance(record, RunMetric):
                continue
            point = Point(record.measurement)
            for key, value in sorted(record.tags.items()):
                if value:
                    point.tag(key, value)
            for key, number in sorted(record.fields.items()):
                point.field(key, float(number) if key.endswith("_s") else int(number))
            # Strings, not tags: they identify a run without multiplying series
            # (`trinity report --from influxdb` groups task runs by them).
            point.field("flow_run_id", record.flow_run_id)
            if record.kind == "task_run":
                point.field("task_run", record.name)
            if record.error:
                point.field("error", record.error[:_ERROR_CHARS])
            points.append(point.time(record.time_ns() // divisor, write_precision=precision))
        return points

    def write(self, records: Sequence[Record]) -> int:
        points = self.points(records)
        if not points:
            return 0
        try:
            if self.settings.api == "v1":
                self._write_v1(points)
            else:
                self._write_v2(points)
        except SinkError:
            raise
        except Exception as exc:
            raise SinkError(f"influxdb at {self.settings.url}: {_one_line(exc)}") from exc
        return len(points)

    def _write_v1(self, points: list[Point]) -> None:
        settings = self.settings
        params = {"db": settings.database or "", "precision": _V1_PRECISION[settings.precision]}
        if settings.retention_policy:
            params["rp"] = settings.retention_policy
        if settings.username:
            params["u"] = settings.username
        if settings.password is not None:
            params["p"] = settings.password.get_secret_value()
        if self._http is None:
            self._http = httpx.Client(base_url=settings.url.rstrip("/"), timeout=settings.timeout_seconds)
        body = "\n".join(point.to_line_protocol() for point in points).encode()
        response = self._http.post("/write", params=params, content=body)
        if response.status_code != 204:
            detail = response.text.strip().splitlines()
            raise SinkError(
                f"influxdb at {settings.url}: /write answered {response.status_code}"
                + (f": {detail[0][:300]}" if detail else "")
            )

    def _write_v2(self, points: list[Point]) -> None:
        settings = self.settings
        if self._client is None:
            token = settings.token.get_secret_value() if settings.token else None
            self._client = InfluxDBClient(
                url=settings.url,
                token=token or "",
                org=settings.org or "",
                timeout=int(settings.timeout_seconds * 1000),
            )
        with self._client.write_api(write_options=SYNCHRONOUS) as api:
            api.write(
                bucket=settings.bucket or "",
                org=settings.org,
                record=points,
                write_precision=_WRITE_PRECISION[settings.precision],
            )

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._client is not None:
            self._client.close()
            self._client = None


_KEYWORDS = ("id", "flow_run_id", "task_run_id", "kind", "name", "logger", "level_name", *TAG_KEYS)


def index_templates(prefix: str) -> dict[str, dict[str, Any]]:
    """The composable index templates Trinity installs, by name: ids and tags as keywords,
    times as dates, figures as numbers, messages as text."""
    keywords = {key: {"type": "keyword"} for key in _KEYWORDS}
    dates = {key: {"type": "date"} for key in ("@timestamp", "start_time", "end_time")}
    runs = {
        **keywords,
        **dates,
        "duration_s": {"type": "double"},
        "queue_wait_s": {"type": "double"},
        "cpu_s": {"type": "double"},
        "max_rss_bytes": {"type": "long"},
        "attempt": {"type": "integer"},
        "retries": {"type": "integer"},
        "error": {"type": "text"},
    }
    logs = {
        **keywords,
        "@timestamp": {"type": "date"},
        "level": {"type": "integer"},
        "message": {"type": "text"},
    }
    meta = {"managed_by": "trinity"}
    return {
        f"{prefix}-runs": {
            "index_patterns": [f"{prefix}-runs-*"],
            "priority": 200,
            "template": {"mappings": {"dynamic": "true", "properties": runs}},
            "_meta": meta,
        },
        f"{prefix}-logs": {
            "index_patterns": [f"{prefix}-logs-*"],
            "priority": 200,
            "template": {"mappings": {"dynamic": "true", "properties": logs}},
            "_meta": meta,
        },
    }


def index_name(prefix: str, record: Record) -> str:
    """The daily index of a record (by its UTC date)."""
    family = "logs" if isinstance(record, LogLine) else "runs"
    return f"{prefix}-{family}-{utc(record.time):%Y.%m.%d}"


class ElasticsearchWriter:
    """Run, task-run and log-line documents to Elasticsearch, one ``_id`` per record."""

    def __init__(self, settings: ElasticsearchSinkSettings) -> None:
        self.settings = settings
        self.name = "elasticsearch"
        self._client: Elasticsearch | None = None
        self._templates_installed = False

    def _client_options(self) -> dict[str, Any]:
        settings = self.settings
        if settings.api_key is not None:
            return {"api_key": settings.api_key.get_secret_value()}
        if settings.username:
            password = settings.password.get_secret_value() if settings.password else ""
            return {"basic_auth": (settings.username, password)}
        return {}

    def _connect(self) -> Elasticsearch:
        if self._client is None:
            self._client = Elasticsearch(
                self.settings.hosts,
                request_timeout=self.settings.timeout_seconds,
                max_retries=0,
                retry_on_timeout=False,
                **self._client_options(),
            )
        return self._client

    def install_templates(self) -> None:
        """Install (or update) the index templates; raises :class:`SinkError`."""
        client = self._connect()
        try:
            for name, body in index_templates(self.settings.index_prefix).items():
                client.indices.put_index_template(
                    name=name,
                    index_patterns=body["index_patterns"],
                    priority=body["priority"],
                    template=body["template"],
                    meta=body["_meta"],
                )
        except Exception as exc:
            raise SinkError(f"elasticsearch at {self._where()}: index template: {_one_line(exc)}") from exc
        self._templates_installed = True

    def actions(self, records: Sequence[Record]) -> list[dict[str, Any]]:
        """The bulk actions: index each document under its record's id."""
        prefix = self.settings.index_prefix
        return [
            {
                "_op_type": "index",
                "_index": index_name(prefix, record),
                "_id": record.id,
                "_source": record.document(),
            }
            for record in records
        ]

    def write(self, records: Sequence[Record]) -> int:
        if not records:
            return 0
        if not self._templates_installed:
            self.install_templates()
        try:
            written, errors = helpers.bulk(
                self._connect(), self.actions(records), raise_on_error=False, raise_on_exception=True
            )
        except (es_exceptions.ApiError, es_exceptions.TransportError, helpers.BulkIndexError) as exc:
            raise SinkError(f"elasticsearch at {self._where()}: {_one_line(exc)}") from exc
        except Exception as exc:
            raise SinkError(f"elasticsearch at {self._where()}: {_one_line(exc)}") from exc
        if errors:
            first = errors[0] if isinstance(errors, list) else errors
            raise SinkError(
                f"elasticsearch at {self._where()}: {len(errors) if isinstance(errors, list) else 1} of "
                f"{len(records)} documents refused, first: {str(first)[:300]}"
            )
        return int(written)

    def _where(self) -> str:
        return ",".join(self.settings.hosts)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
