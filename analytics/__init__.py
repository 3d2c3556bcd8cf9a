"""Run-history analytics: pure functions from pandas frames to reports and proposed spec changes.

Entry points: :func:`build_report` (frames -> :class:`Report`), the renderers
(:func:`render_logs_tree`, :func:`render_markdown_summary`, :func:`performance_rows`,
:func:`insight_rows`) and the input contract in :mod:`analytics.frames`. Nothing here touches
files, the network or a database; the caller does::

    report = build_report(
        runs=runs, tasks=tasks,
        context={"etl": WorkflowContext(document=workflow_dict, specification=spec_dict)},
        window_start=start, window_end=end,
        models=previous,  # what earlier reports learnt (LearnedModels), or None
    )
    for path, content in render_logs_tree(report).items():
        ...  # write LOGS/<path>: str -> text, bytes -> SVG
    markdown = render_markdown_summary(report)  # Prefect artifact
    rows = performance_rows(report), insight_rows(report)  # database tables
    report.models.rows()  # what this report learnt, to store for the next one
    report.alerts  # findings worth an event

The learning part (scikit-learn: failure families, multivariate anomalies, SLO forecasts, alerts)
is :mod:`analytics.learning`; what it learns and finds, :mod:`analytics.learning_model`.
"""

from analytics.config import AnalysisConfig
from analytics.frames import RUN_COLUMNS, TASK_COLUMNS, FrameError, WorkflowContext, validate_frames
from analytics.render import (
    LOGS_TREE_PATHS,
    insight_rows,
    performance_rows,
    render_logs_tree,
    render_markdown_summary,
)
from analytics.report import build_report
from analytics.report_model import Finding, Recommendation, Report
from analytics.yaml_diff import apply_unified_diff

__all__ = [
    "LOGS_TREE_PATHS",
    "RUN_COLUMNS",
    "TASK_COLUMNS",
    "AnalysisConfig",
    "Finding",
    "FrameError",
    "Recommendation",
    "Report",
    "WorkflowContext",
    "apply_unified_diff",
    "build_report",
    "insight_rows",
    "performance_rows",
    "render_logs_tree",
    "render_markdown_summary",
    "validate_frames",
]
