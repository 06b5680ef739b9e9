"""Authentication and authorization dependencies, cookie mode with CSRF, bounded hashing.

Every authenticated request verifies the JWT (RS256 only, known ``kid``, audience, issuer,
expiry, type) and then loads the Account aggregate (snapshot + few events): a disabled
account, a logged-out session or a revoked refresh family stops working on the very next
request, with no read-model lag.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar
from uuid import UUID

import anyio
from eventsourcing.application import AggregateNotFoundError
from fastapi import Depends, Request, Response

from aggregates.accounts import Account
from api.consistency import note_caller
from api.deps import ACCESS_COOKIE, ContainerDep
from api.errors import ApiError
from api.readonly import refuse_read_only_write
from commands.credentials import InvalidJWT

REFRESH_COOKIE = "sl_refresh"
CSRF_COOKIE = "sl_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

T = TypeVar("T")


@dataclass(frozen=True)
class Principal:
    """The caller, as proven by the token and checked against the account's current state."""

    account_id: str
    token_role: str
    session_id: str
    via_cookie: bool
    account: Account

    def has_role(self, *roles: str) -> bool:
        # Both must allow it: a demotion takes effect at once, a promotion at the next refresh.
        return self.token_role in roles and self.account.role in roles

    @property
    def reads_all(self) -> bool:
        """Admins and auditors read every order, payment, refund, shipment, invoice and case."""
        return self.has_role("admin", "auditor")


def unauthorized(message: str = "authentication required") -> ApiError:
    return ApiError(
        401, "UNAUTHORIZED", message, headers={"WWW-Authenticate": 'Bearer realm="shopledger"'}
    )


def load_account(container: Any, account_id: str) -> Account | None:
    try:
        account = container.load(UUID(account_id))
    except (AggregateNotFoundError, ValueError):
        return None
    return account if isinstance(account, Account) else None


def check_csrf(request: Request, expected_hash: str | None) -> None:
    """Signed double submit: header == cookie, and the token is the one bound into the JWT."""
    header = request.headers.get(CSRF_HEADER, "")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if (
        not header
        or not cookie
        or not hmac.compare_digest(header, cookie)
        or expected_hash is None
        or not (hmac.compare_digest(csrf_hash(header), expected_hash))
    ):
        raise ApiError(403, "FORBIDDEN", f"missing or wrong {CSRF_HEADER} header")


def csrf_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _presented_token(request: Request) -> tuple[str, bool] | None:
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise unauthorized("the Authorization header must be 'Bearer <token>'")
        return value.strip(), False
    cookie = request.cookies.get(ACCESS_COOKIE)
    if cookie:
        return cookie, True
    return None


def current_principal(request: Request, container: ContainerDep) -> Principal:
    presented = _presented_token(request)
    if presented is None:
        raise unauthorized()
    token, via_cookie = presented
    try:
        claims = container.tokens.verify(token, "access")
    except InvalidJWT as exc:
        raise unauthorized(f"invalid access token: {exc}") from None
    account = load_account(container, claims.sub)
    if account is None:
        raise unauthorized("invalid access token: unknown account")
    if not account.is_active:
        raise ApiError(403, "ACCOUNT_DISABLED", "the account is disabled")
    if not account.session_valid(claims.sid, container.bus.clock()):
        raise unauthorized("the session has ended; please log in again")
    # An account made read-only (auditor) writes nothing, whatever role its token was issued for.
    refuse_read_only_write(request.method, request.scope["path"], account.role, claims.role)
    if via_cookie and request.method not in SAFE_METHODS:
        check_csrf(request, claims.csrf)
    request.state.actor = claims.sub
    note_caller(claims.sub)
    return Principal(claims.sub, claims.role, claims.sid, via_cookie, account)


CurrentUser = Annotated[Principal, Depends(current_principal)]


def require_role(*roles: str) -> Callable[[Principal], Principal]:
    def check(principal: CurrentUser) -> Principal:
        if not principal.has_role(*roles):
            if principal.account.role in roles:
                # Promoted since the token was issued: a fresh token carries the new role.
                raise ApiError(
                    403,
                    "FORBIDDEN",
                    f"your account is now {principal.account.role}, but this access token was "
                    f"issued for {principal.token_role}: refresh it (POST /api/auth/refresh) "
                    "or log in again",
                    {"reason": "TOKEN_ROLE_OUTDATED", "role": principal.account.role},
                )
            raise ApiError(403, "FORBIDDEN", f"this needs the role {' or '.join(roles)}")
        return principal

    return check


def require_verified(principal: CurrentUser) -> Principal:
    if not principal.account.email_verified:
        raise ApiError(403, "EMAIL_NOT_VERIFIED", "verify your email address first")
    return principal


def optional_principal(request: Request, container: ContainerDep) -> Principal | None:
    """The caller if a token is presented (a bad one is still 401), else None (anonymous)."""
    if _presented_token(request) is None:
        return None
    return current_principal(request, container)


OptionalUser = Annotated[Principal | None, Depends(optional_principal)]
AdminUser = Annotated[Principal, Depends(require_role("admin"))]
SellerUser = Annotated[Principal, Depends(require_role("seller"))]
SellerOrAdmin = Annotated[Principal, Depends(require_role("seller", "admin"))]
VerifiedUser = Annotated[Principal, Depends(require_verified)]
#: The audit routes' readers: auditors (read-only, see api/readonly.py) and admins.
AuditReader = Annotated[Principal, Depends(require_role("auditor", "admin"))]


class HashPool:
    """Runs argon2 off the event loop, at most ``concurrency`` at a time.

    Waiting callers hold no worker thread (they wait on the limiter in the event loop), so a
    burst of logins cannot starve other requests; past ``max_waiting`` they are told to retry.
    """

    def __init__(self, concurrency: int, max_waiting: int) -> None:
        self.concurrency = concurrency
        self.max_waiting = max_waiting
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.concurrency)
        return self._limiter

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        limiter = self.limiter
        if limiter.available_tokens < 1 and limiter.statistics().tasks_waiting >= self.max_waiting:
            raise ApiError(
                503,
                "SERVICE_UNAVAILABLE",
                "too many sign-ins at once; retry shortly",
                headers={"Retry-After": "1"},
            )
        return await anyio.to_thread.run_sync(func, *args, limiter=self.limiter)


def set_auth_cookies(
    response: Response,
    access: str,
    refresh: str,
    csrf: str,
    access_max_age: int,
    refresh_max_age: int,
    secure: bool,
) -> None:
    response.set_cookie(
        ACCESS_COOKIE,
        access,
        max_age=access_max_age,
        httponly=True,
        secure=secure,
        samesite="strict",
        path="/",
    )
    response.set_cookie(
        REFRESH_COOKIE,
        refresh,
        max_age=refresh_max_age,
        httponly=True,
        secure=secure,
        samesite="strict",
        path="/api/auth",
    )
    # Readable by the page's script, which echoes it in X-CSRF-Token.
    response.set_cookie(
        CSRF_COOKIE,
        csrf,
        max_age=refresh_max_age,
        httponly=False,
        secure=secure,
        samesite="strict",
        path="/",
    )


def clear_auth_cookies(response: Response, secure: bool) -> None:
    response.delete_cookie(ACCESS_COOKIE, path="/", secure=secure, httponly=True, samesite="strict")
    response.delete_cookie(
        REFRESH_COOKIE, path="/api/auth", secure=secure, httponly=True, samesite="strict"
    )
    response.delete_cookie(CSRF_COOKIE, path="/", secure=secure, samesite="strict")
