"""``trinity report``: analyse recent run history now, write its rows and the LOGS tree.

Harvests new runs from Prefect first (when a Prefect API is configured), builds the report over
``--since``..``--until``, writes its rows (those ``/api/v1/analytics/*`` serve) and every file of the
LOGS tree into ``--out`` and prints the summary.
What the command does is in :mod:`trinity.commands.report_impl`, imported when it runs (see
:mod:`trinity.cli` for why).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def report(
    since: Annotated[
        str | None,
        typer.Option(
            help="Start: ISO date/time or relative (-7d, -12h). Default: the window of the scheduled "
            "insights report (the analytics.window_days UTC days ending with today)."
        ),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="End: ISO date/time or relative. Default: now (with --since).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            # The order of Settings.logs_dir, as the one resolver applies it.
            help="Folder for the LOGS tree (default: $TRINITY_LOGS_DIR, else analytics.logs_dir when "
            "configured, else <state_dir>/LOGS).",
        ),
    ] = None,
    workflow: Annotated[str | None, typer.Option("--workflow", help="Only this workflow.")] = None,
    harvest: Annotated[
        bool,
        typer.Option("--harvest/--no-harvest", help="Read new runs from Prefect first (when configured)."),
    ] = True,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="Configuration file (default: $TRINITY_CONFIG or ./trinity.config.yml)."
        ),
    ] = None,
    source: Annotated[
        str,
        typer.Option(
            "--from",
            help="Where the run history comes from: database (Trinity's tables) or influxdb (the points "
            "of sinks.influxdb, for a Prefect database that keeps little history).",
        ),
    ] = "database",
) -> None:
    """Analyse run history now: write its rows (served by the API) and the LOGS tree, print the summary."""
    from trinity.commands import report_impl  # imports Prefect, pandas, SQLAlchemy: see trinity.cli

    report_impl.report(
        since=since, until=until, out=out, workflow=workflow, harvest=harvest, config=config, source=source
    )


def register(app: typer.Typer) -> None:
    """Add ``trinity report`` to the CLI."""
    app.command("report")(report)
