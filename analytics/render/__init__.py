"""Renderers: pure functions from a report to content (the caller writes it somewhere)."""

from analytics.render.logs_tree import LOGS_TREE_PATHS, render_logs_tree
from analytics.render.markdown import render_markdown_summary
from analytics.render.rows import insight_rows, performance_rows

__all__ = [
    "LOGS_TREE_PATHS",
    "insight_rows",
    "performance_rows",
    "render_logs_tree",
    "render_markdown_summary",
]
