"""Liveness without a key: load balancers and `takeback` itself check it."""

from __future__ import annotations

from fastapi import APIRouter, Request

from takeback import __version__
from takeback.web.auth import app_state
from takeback.web.schemas import Health

router = APIRouter(prefix="/v1", tags=["health"])


@router.get("/health", response_model=Health, summary="Is the service up, and how many signals it holds")
async def health(request: Request) -> Health:
    return Health(signals=len(app_state(request).matcher), version=__version__)
