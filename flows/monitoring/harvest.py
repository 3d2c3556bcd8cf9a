"""The authoritative path to the sinks: what the scheduled harvest writes after copying run history.

For each configured sink, every ``execution_logs`` row that ended since the sink's cursor (minus a
re-read window, for rows written late) becomes the same records the live path sends
(:func:`blocks.sink_records.run_records`), and for Elasticsearch every log line Prefect stored for
those runs, with the id the live path derives (:mod:`flows.monitoring.log_lines`). Points and
documents are idempotent, so what the live path already wrote is written again unchanged and what
it missed (a sink that was down, a full queue, a process that died) arrives: once.

Each sink has its own cursor (a named watermark ``sinks:<sink>:<target>``), advanced only when all
its pages were written; a sink that is down is logged in one line and left for the next pass,
and never holds up the other sink.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import anyio
import sqlalchemy as sa
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.client.schemas.sorting import LogSort

from blocks.sink_records import LogLine, Record, run_records
from blocks.sink_writers import ElasticsearchWriter, InfluxDBWriter, SinkError, SinkWriter
from blocks.sinks import SinkConfigError, sink_writers
from flows.analytics.database import Tables, read_watermark, write_watermark
from flows.monitoring.log_lines import stored_log_line
from trinity.core.sink_settings import SinksSettings

logger = logging.getLogger("trinity.sinks")

PAGE_ROWS = 200
LOG_PAGE = 200
DEFAULT_REREAD = dt.timedelta(minutes=15)


@dataclass
class SinkHarvest:
    """What one pass wrote to one sink."""

    sink: str
    runs: int = 0
    records: int = 0
    error: str | None = None
    cursor: dt.datetime | None = None

    def summary(self) -> str:
        if self.error:
            return f"sink {self.sink}: not written this pass ({self.error}); the next pass tries again"
        return f"sink {self.sink}: wrote {self.records} record(s) of {self.runs} run(s)"


@dataclass
class SinksHarvest:
    """One pass over every configured sink."""

    sinks: list[SinkHarvest] = field(default_factory=list)
    error: str | None = None

    def summary(self) -> str:
        if self.error:
            return f"sinks: {self.error}"
        return "; ".join(sink.summary() for sink in self.sinks) or "sinks: none configured"


def cursor_name(writer: SinkWriter) -> str:
    """The watermark of a sink: its kind and a digest of where it writes (a new target starts over)."""
    if isinstance(writer, InfluxDBWriter):
        settings = writer.settings
        target = (
            f"{settings.url}|{settings.api}|{settings.database}|{settings.retention_policy}|{settings.bucket}"
        )
    elif isinstance(writer, ElasticsearchWriter):
        target = f"{','.join(writer.settings.hosts)}|{writer.settings.index_prefix}"
    else:
        target = writer.name
    return f"sinks:{writer.name}:{hashlib.sha256(target.encode()).hexdigest()[:16]}"


def _rows(engine: sa.Engine, tables: Tables, since: dt.datetime | None, offset: int) -> list[dict[str, Any]]:
    """One page of the rows that ended since ``since``, oldest first."""
    table = tables.execution_logs
    query = sa.select(table).where(table.c.flow_run_id.is_not(None), table.c.ended_at.is_not(None))
    if since is not None:
        query = query.where(table.c.ended_at >= since)
    query = query.order_by(table.c.ended_at, table.c.flow_run_id).limit(PAGE_ROWS).offset(offset)
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


async def _log_lines(rows: Sequence[dict[str, Any]]) -> list[LogLine]:
    """Every log line Prefect stored for these runs, tagged with their workflow and version."""
    tags = {
        row["flow_run_id"]: {"workflow": str(row["workflow_name"]), "version": str(row["workflow_version"])}
        for row in rows
    }
    ids: list[UUID] = list(tags)
    found: list[LogLine] = []
    async with get_client() as client:
        offset = 0
        while True:
            page = await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)),
                limit=LOG_PAGE,
                offset=offset,
                sort=LogSort.TIMESTAMP_ASC,
            )
            for log in page:
                if log.flow_run_id is None:
                    continue
                found.append(stored_log_line(log, tags[log.flow_run_id]))
            if len(page) < LOG_PAGE:
                return found
            offset += LOG_PAGE


async def _harvest_one(
    engine: sa.Engine, tables: Tables, writer: SinkWriter, reread: dt.timedelta
) -> SinkHarvest:
    result = SinkHarvest(writer.name)
    name = cursor_name(writer)

    def read_cursor() -> dt.datetime | None:
        with engine.connect() as connection:
            return read_watermark(connection, tables, name)

    cursor = await anyio.to_thread.run_sync(read_cursor)
    since = cursor - reread if cursor else None
    newest = cursor
    try:
        while True:
            page = await anyio.to_thread.run_sync(_rows, engine, tables, since, result.runs)
            if not page:
                break
            records: list[Record] = [record for row in page for record in run_records(row)]
            if isinstance(writer, ElasticsearchWriter):
                records.extend(await _log_lines(page))
            await anyio.to_thread.run_sync(writer.write, records)
            result.runs += len(page)
            result.records += len(records)
            newest = max(filter(None, [newest, *(row["ended_at"] for row in page)]))
    except SinkError as exc:
        result.error = str(exc)
        logger.warning("sink harvest: %s; its cursor stays, the next pass writes the rest", exc)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        logger.warning("sink harvest of %s stopped: %s; the next pass tries again", writer.name, result.error)
    if newest is not None and newest != cursor and result.error is None:

        def write_cursor() -> None:
            with engine.begin() as connection:
                write_watermark(connection, tables, name, newest)

        await anyio.to_thread.run_sync(write_cursor)
    result.cursor = newest
    return result


async def harvest_sinks(
    engine: sa.Engine, tables: Tables, sinks: SinksSettings, *, reread: dt.timedelta = DEFAULT_REREAD
) -> SinksHarvest:
    """Write to each configured sink what it may have missed; never raises."""
    if not sinks.configured:
        return SinksHarvest()
    try:
        writers = sink_writers(sinks)
    except SinkConfigError as exc:
        logger.warning("sink harvest skipped: %s", exc)
        return SinksHarvest(error=str(exc))
    harvest = SinksHarvest()
    try:
        for writer in writers:
            harvest.sinks.append(await _harvest_one(engine, tables, writer, reread))
    finally:
        for writer in writers:
            writer.close()
    return harvest
