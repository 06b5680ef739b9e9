"""How create_app wires routers: ours go in route by route (no per-application preparation),
one with something to combine with the application goes through include_router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI

from api.app import ROUTERS, _combines_with_the_app


def _noop() -> None:
    return None


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield


def test_every_router_of_ours_is_added_route_by_route() -> None:
    assert not [r for r in ROUTERS if _combines_with_the_app(r)]


def test_a_router_with_dependencies_handlers_or_a_lifespan_is_included() -> None:
    assert _combines_with_the_app(APIRouter(dependencies=[Depends(_noop)]))
    assert _combines_with_the_app(APIRouter(on_startup=[_noop]))
    assert _combines_with_the_app(APIRouter(lifespan=_lifespan))
    assert not _combines_with_the_app(APIRouter(prefix="/x", tags=["x"]))
