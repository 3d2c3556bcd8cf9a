"""Trinity documents: the model, loading with limits, validation, expressions and DAG utilities.

Pure: no network, no Prefect, no database, no file writes.
"""

from specs.actions import action_inputs_model, action_names
from specs.dag import CycleError, critical_path, find_cycle, topological_order, upstream_closure
from specs.errors import Problem, SpecError
from specs.expressions import ExpressionError, evaluate, evaluate_condition, evaluate_items, render
from specs.loader import ValidationResult, check_paths, load_path, load_text
from specs.models import (
    Cache,
    Concurrency,
    Defaults,
    Document,
    Requirement,
    RetryBackoff,
    Schedule,
    Specification,
    SpecRef,
    SuccessMetrics,
    Task,
    Workflow,
)
from specs.parameters import apply_defaults, parse_cli_param, validate_parameters
from specs.schema import documents_json_schema
from specs.versions import Version, VersionRange, best_match, parse_range

__all__ = [
    "Cache",
    "Concurrency",
    "CycleError",
    "Defaults",
    "Document",
    "ExpressionError",
    "Problem",
    "Requirement",
    "RetryBackoff",
    "Schedule",
    "SpecError",
    "SpecRef",
    "Specification",
    "SuccessMetrics",
    "Task",
    "ValidationResult",
    "Version",
    "VersionRange",
    "Workflow",
    "action_inputs_model",
    "action_names",
    "apply_defaults",
    "best_match",
    "check_paths",
    "critical_path",
    "documents_json_schema",
    "evaluate",
    "evaluate_condition",
    "evaluate_items",
    "find_cycle",
    "load_path",
    "load_text",
    "parse_cli_param",
    "parse_range",
    "render",
    "topological_order",
    "upstream_closure",
    "validate_parameters",
]
