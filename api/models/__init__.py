"""SQLModel tables and their public (response) models, one family per entity."""

from api.models.analytics import AnalyticsInsight, AnalyticsPerformance
from api.models.api_key import ApiKey, Role
from api.models.execution_log import ExecutionLog
from api.models.run import IdempotencyKey, Run
from api.models.specification import Specification
from api.models.task_run import AnalyticsWatermark, HarvestedRun, TaskRun
from api.models.workflow import Workflow, WorkflowStatus

__all__ = [
    "AnalyticsInsight",
    "AnalyticsPerformance",
    "AnalyticsWatermark",
    "ApiKey",
    "ExecutionLog",
    "HarvestedRun",
    "IdempotencyKey",
    "Role",
    "Run",
    "Specification",
    "TaskRun",
    "Workflow",
    "WorkflowStatus",
]
