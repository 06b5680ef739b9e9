"""Dependencies shared by routers: the container, event metadata, read-your-writes, commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.consistency import (
    CONSISTENCY_HEADER,
    MIN_POSITION_HEADER,
    POSITION_COOKIE,
    POSITION_HEADER,
    record_position,
)
from api.errors import ApiError
from commands.application import EventMeta
from commands.credentials import InvalidJWT
from commands.idempotency import Replay, fingerprint
from queries.common import PageRequest
from shopledger.bootstrap import Container
from shopledger.logging import request_id_var

IDEMPOTENCY_HEADER = "Idempotency-Key"
#: The access-token cookie of cookie mode (api/auth.py sets it).
ACCESS_COOKIE = "sl_access"


def get_container(request: Request) -> Container:
    return request.app.state.container  # type: ignore[no-any-return]


ContainerDep = Annotated[Container, Depends(get_container)]


def actor_of(request: Request) -> str:
    """The authenticated principal's id, or ``anonymous`` (set by the auth dependency)."""
    return getattr(request.state, "actor", None) or "anonymous"


def event_meta(request: Request) -> EventMeta:
    return EventMeta(
        actor=actor_of(request),
        correlation_id=request_id_var.get() or "",
        idempotency_key=request.headers.get(IDEMPOTENCY_HEADER),
    )


def reads(*projection_names: str) -> Callable[..., None]:
    """Dependency for a query reading ``projection_names``: waits (bounded) until they have
    processed the caller's own last write, or ``X-Min-Position`` when sent; ``X-Consistency:
    eventual`` answers at once. Not caught up in time: 503 with Retry-After."""

    def wait(request: Request, container: ContainerDep) -> None:
        raw = request.headers.get(MIN_POSITION_HEADER)
        if raw is not None:
            if not raw.strip().isdigit() or len(raw.strip()) > 18:
                raise ApiError(
                    400,
                    "VALIDATION_ERROR",
                    f"{MIN_POSITION_HEADER} must be a non-negative integer",
                    {"errors": [_header_problem(MIN_POSITION_HEADER, "NOT_AN_INTEGER")]},
                )
            position: int | None = int(raw)
        else:
            mode = request.headers.get(CONSISTENCY_HEADER, "session").strip().lower()
            if mode not in ("session", "eventual"):
                raise ApiError(
                    400,
                    "VALIDATION_ERROR",
                    f"{CONSISTENCY_HEADER} must be 'session' (the default) or 'eventual'",
                    {"errors": [_header_problem(CONSISTENCY_HEADER, "NOT_ALLOWED_VALUE")]},
                )
            position = None if mode == "eventual" else caller_mark(request, container)
        if not position:
            return
        timeout = container.settings.min_position_wait.total_seconds()
        if not container.wait_for(projection_names, position, timeout):
            retry_after = max(1, round(timeout))
            raise ApiError(
                503,
                "SERVICE_UNAVAILABLE",
                "the read model has not caught up with that position yet; retry shortly",
                {"minPosition": position, "projections": list(projection_names)},
                headers={"Retry-After": str(retry_after)},
            )

    return wait


def _header_problem(header: str, problem: str) -> dict[str, str]:
    return {"field": f"header:{header}", "problem": problem, "message": f"bad {header} header"}


def caller_subject(request: Request, container: Container) -> str | None:
    """The account id a valid access token names (bearer or cookie), else None. Only for
    consistency marks: routes authorize through api.auth, which also checks the account."""
    if hasattr(request.state, "token_subject"):
        cached: str | None = request.state.token_subject
        return cached
    subject = None
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    token = value.strip() if scheme.lower() == "bearer" else request.cookies.get(ACCESS_COOKIE)
    if token:
        try:
            subject = container.tokens.verify(token, "access").sub
        except InvalidJWT:
            subject = None
    request.state.token_subject = subject
    return subject


def caller_mark(request: Request, container: Container) -> int | None:
    """The position of the caller's own last write: the signed-in account's mark and, for a
    caller who also wrote anonymously (before signing in), the cookie's."""
    state = request.app.state
    marks = [state.position_cookie.read(request.cookies.get(POSITION_COOKIE))]
    subject = caller_subject(request, container)
    if subject is not None:
        marks.append(state.marks.get(subject))
    known = [m for m in marks if m is not None]
    return max(known) if known else None


Responder = Callable[[Any], tuple[int, Any]]


class Once:
    """Idempotency-Key handling (API.md "Conventions") for a request of one or more commands:
    a repeat of the same request gets the first answer again, a different body 422, one still
    running 409. The answer is stored in the transaction of the request's last command (see
    :meth:`finalize`); a failure releases the key."""

    def __init__(
        self,
        request: Request,
        container: Container,
        fingerprint_body: Any,
        scope: str | None = None,
    ) -> None:
        self.container = container
        self.claim: Any = None
        self.replay: JSONResponse | None = None
        self.status: int = 500
        self.body: dict[str, Any] = {}
        meta = event_meta(request)
        if meta.idempotency_key is not None:
            claim = container.idempotency.claim(
                scope or meta.actor,
                meta.idempotency_key,
                fingerprint(request.method, request.url.path, fingerprint_body),
            )
            if isinstance(claim, Replay):
                record_position(claim.position)
                self.replay = _json(claim.status_code, claim.body, claim.position)
                self.replay.headers["Idempotent-Replayed"] = "true"
            else:
                self.claim = claim

    def finalize(
        self, respond: Callable[[Any], tuple[int, Any] | None]
    ) -> Callable[[Any, Any, int | None], None]:
        """A finalizer for the command bus: ``respond(result)`` gives the answer, or None when
        this is not the request's last command."""

        def run(session: Any, result: Any, position: int | None) -> None:
            answer = respond(result)
            if answer is None:
                return
            status, body = answer
            self.status, self.body = status, jsonable_encoder(body)
            if self.claim is not None:
                self.container.idempotency.complete(
                    session, self.claim, self.status, self.body, position
                )

        return run

    def response(self, position: int | None) -> JSONResponse:
        return _json(self.status, self.body, position)

    def __enter__(self) -> Once:  # noqa: PYI034
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        if kind is not None and self.claim is not None:
            self.container.idempotency.release(self.claim)


def run_command(
    request: Request,
    container: Container,
    command: Any,
    respond: Responder,
    body: BaseModel | None = None,
    scope: str | None = None,
) -> JSONResponse:
    """Execute ``command`` and answer with ``respond(result)``; with an ``Idempotency-Key``
    header the answer is stored in the command's own transaction and replayed for a repeat."""
    once = Once(request, container, request_fingerprint_body(body), scope)
    if once.replay is not None:
        return once.replay
    with once:
        outcome = container.bus.execute(
            command, event_meta(request), finalize=once.finalize(respond)
        )
    return once.response(outcome.position)


def request_fingerprint_body(body: BaseModel | None) -> Any:
    """The parsed body as the client spelled it (camelCase), for request fingerprints."""
    return None if body is None else body.model_dump(mode="json", by_alias=True)


def _json(status: int, payload: Any, position: int | None) -> JSONResponse:
    response = JSONResponse(jsonable_encoder(payload), status_code=status)
    if position is not None:
        response.headers[POSITION_HEADER] = str(position)
    return response


def path_id(raw: str, code: str = "NOT_FOUND", what: str = "object") -> UUID:
    """An id from the path: anything that is not a UUID is simply not found (never a 400 that
    tells an outsider how ids look)."""
    try:
        return UUID(raw)
    except ValueError:
        raise ApiError(404, code, f"{what} not found") from None


def execute(request: Request, container: Container, command: Any) -> Any:
    """Run a command that is not replayable by Idempotency-Key; returns the bus Outcome."""
    return container.bus.execute(command, event_meta(request))


def with_position(response: Response, position: int | None) -> Response:
    if position is not None:
        response.headers[POSITION_HEADER] = str(position)
    return response


def page_request(
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=100)] = 20,
) -> PageRequest:
    return PageRequest(page, page_size)


PageDep = Annotated[PageRequest, Depends(page_request)]
