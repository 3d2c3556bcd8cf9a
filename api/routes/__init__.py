"""The /api/v1 routers, one module per resource."""

from fastapi import APIRouter

from api.routes import analytics, audit, auth, health, keys, runs, specs, workflows

api_router = APIRouter()
for module in (health, auth, keys, specs, workflows, runs, analytics, audit):
    api_router.include_router(module.router)

__all__ = ["api_router"]
