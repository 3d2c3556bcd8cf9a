"""/health: is the database up, is the Prefect API up (no authentication)."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import StateDep

router = APIRouter(tags=["health"])

DATABASE_TIMEOUT_SECONDS = 3.0


class ComponentHealth(BaseModel):
    status: Literal["up", "down"]
    detail: str | None = None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: ComponentHealth
    prefect: ComponentHealth


async def _database(state: StateDep) -> ComponentHealth:
    try:
        await asyncio.wait_for(state.db.ping(), timeout=DATABASE_TIMEOUT_SECONDS)
    except TimeoutError:
        return ComponentHealth(status="down", detail="no answer within 3s")
    except Exception as exc:  # any failure means "down"; the detail says which
        return ComponentHealth(status="down", detail=type(exc).__name__)
    return ComponentHealth(status="up")


async def _prefect(state: StateDep) -> ComponentHealth:
    up, detail = await state.prefect.health()
    return ComponentHealth(status="up" if up else "down", detail=detail)


@router.get("/health", response_model=Health, summary="Database and Prefect API status")
async def health(state: StateDep) -> Health:
    database, prefect = await asyncio.gather(_database(state), _prefect(state))
    overall: Literal["ok", "degraded"] = "ok" if database.status == prefect.status == "up" else "degraded"
    return Health(status=overall, database=database, prefect=prefect)
