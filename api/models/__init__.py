"""The API's SQLModel classes, one family per entity: a table class mapped onto its core table
(:mod:`trinity.core.tables`), and the request and response models."""

from api.models.analytics import AnalyticsInsight, AnalyticsPerformance
from api.models.api_key import ApiKey, Role
from api.models.run import IdempotencyKey, Run
from api.models.specification import Specification
from api.models.workflow import Workflow, WorkflowStatus

__all__ = [
    "AnalyticsInsight",
    "AnalyticsPerformance",
    "ApiKey",
    "IdempotencyKey",
    "Role",
    "Run",
    "Specification",
    "Workflow",
    "WorkflowStatus",
]
