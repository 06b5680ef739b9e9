"""Registration, email verification, login, token refresh and logout, JWKS."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, Field

from aggregates.accounts import (
    Account,
    InvalidEmail,
    InvalidToken,
    check_password_policy,
    normalize_email,
    normalize_username,
)
from api.auth import (
    CSRF_COOKIE,
    REFRESH_COOKIE,
    CurrentUser,
    HashPool,
    check_csrf,
    clear_auth_cookies,
    csrf_hash,
    load_account,
    set_auth_cookies,
    unauthorized,
)
from api.authlimits import Family, auth_limits
from api.consistency import note_caller
from api.deps import ContainerDep, execute, run_command, with_position
from api.errors import ApiError
from api.openapi import IDEMPOTENT, documented, examples
from api.responses import (
    AccountSummary,
    EmailVerified,
    JsonWebKeySet,
    TokenPair,
    VerificationSent,
)
from api.schemas import RequestBody
from api.validation import Text, domain_rule
from commands.accounts import (
    LoginRefused,
    RecordLoginFailure,
    RecordLoginSuccess,
    Register,
    ResendVerification,
    RevokeSession,
    RotateSession,
    VerificationMail,
    VerifyEmail,
    lookup_account_id,
)
from commands.credentials import InvalidJWT, new_secret, token_hash
from shopledger.bootstrap import Container

log = logging.getLogger(__name__)

router = APIRouter(tags=["auth"])


def hash_pool(request: Request) -> HashPool:
    return request.app.state.hash_pool  # type: ignore[no-any-return]


HashPoolDep = Annotated[HashPool, Depends(hash_pool)]


class RegisterBody(RequestBody):
    model_config = examples(
        {
            "email": "xiaoming.wang@example.com.tw",
            "username": "xiaoming",
            "password": "Taipei101-sunrise",
            "displayName": "王小明",
            "phone": "0912-345-678",
        }
    )

    # The domain's rules run while the body is parsed, so every problem is reported at once.
    email: Annotated[str, AfterValidator(domain_rule(normalize_email))] = Field(
        min_length=3, max_length=320
    )
    username: Annotated[str, AfterValidator(domain_rule(normalize_username))] = Field(
        min_length=3, max_length=30
    )
    password: Annotated[str, AfterValidator(domain_rule(check_password_policy))] = Field(
        min_length=1, max_length=1024
    )
    display_name: Text | None = Field(default=None, min_length=1, max_length=100)
    phone: str | None = Field(default=None, max_length=30, pattern=r"^\+?[0-9 ()-]{6,30}$")


class VerifyBody(RequestBody):
    model_config = examples({"token": "5f0c2b8e9a7d4c1e8b3a6f2d1e0c9b8a.Q2hhbmdlIG1lIGZvciByZWFs"})

    token: str = Field(min_length=1, max_length=200)


class LoginBody(RequestBody):
    model_config = examples(
        {"email": "xiaoming.wang@example.com.tw", "password": "Taipei101-sunrise"},
        {"email": "xiaoming", "password": "Taipei101-sunrise", "useCookies": True},
    )

    email: str = Field(min_length=1, max_length=320, description="email address or username")
    password: str = Field(min_length=1, max_length=1024)
    use_cookies: bool = Field(
        default=False, description="HttpOnly cookies instead of tokens in the body (CSRF-protected)"
    )


class RefreshBody(RequestBody):
    model_config = examples({"refreshToken": "eyJhbGciOiJSUzI1NiIsImtpZCI6Ii4uLiJ9.e30.c2ln"})

    refresh_token: str | None = Field(default=None, max_length=4096)


def account_summary(account: Account) -> dict[str, Any]:
    return {
        "userId": str(account.id),
        "email": account.email,
        "username": account.username,
        "displayName": account.display_name,
        "role": account.role,
        "emailVerified": account.email_verified,
    }


#: The page the verification mail links to (api/routes/pages.py), here or on the front end.
VERIFY_PAGE = "/verify-email"


def verification_link(container: Container, token: str) -> str:
    base = container.settings.frontend_url or container.settings.public_url
    return f"{base}{VERIFY_PAGE}?{urlencode({'token': token})}"


def _verification(container: Container, account_id: UUID, now: datetime) -> VerificationMail:
    secret = new_secret()
    token = f"{account_id.hex}.{secret}"
    link = verification_link(container, token)
    return VerificationMail(
        token_hash(secret), now + container.settings.email_verification_ttl, link
    )


@router.post(
    "/api/auth/register",
    status_code=201,
    response_model=None,
    responses=documented(
        AccountSummary,
        status=201,
        errors={409: "CONFLICT", 429: "RATE_LIMITED", 503: "SERVICE_UNAVAILABLE"},
    ),
    openapi_extra=IDEMPOTENT,
)
async def register(
    body: RegisterBody, request: Request, container: ContainerDep, pool: HashPoolDep
) -> Response:
    """Sign up as a buyer; a verification link is mailed."""
    email = normalize_email(body.email)
    await run_in_threadpool(rate_limit, request, "register", email)
    username_key = normalize_username(body.username)
    check_password_policy(body.password, email=email, username=body.username)
    password_hash = await pool.run(container.passwords.hash, body.password)
    account_id = uuid4()
    command = Register(
        account_id=account_id,
        email=email,
        username=body.username,
        username_key=username_key,
        password_hash=password_hash,
        display_name=body.display_name or body.username,
        phone=body.phone,
        verification=_verification(container, account_id, container.bus.clock()),
    )

    def respond(account: Account) -> tuple[int, dict[str, Any]]:
        return 201, account_summary(account)

    return await run_in_threadpool(
        run_command, request, container, command, respond, body, "anonymous"
    )


def parse_mailed_token(token: str, name: str = "verification") -> tuple[UUID, str]:
    """A token sent by mail (``<account id hex>.<secret>``): the account and the secret's
    hash, or 400 INVALID_TOKEN naming the ``name`` token."""
    head, _, secret = token.strip().partition(".")
    try:
        account_id = UUID(hex=head)
    except ValueError:
        raise InvalidToken(f"the {name} token is unknown, used or expired") from None
    if not secret:
        raise InvalidToken(f"the {name} token is unknown, used or expired")
    return account_id, token_hash(secret)


def confirm_email(request: Request, container: Container, token: str) -> tuple[UUID, int | None]:
    """Use a verification token; InvalidToken when it is unknown, used or expired."""
    account_id, hashed = parse_mailed_token(token)
    if load_account(container, str(account_id)) is None:
        raise InvalidToken("the verification token is unknown, used or expired")
    outcome = execute(request, container, VerifyEmail(account_id, hashed))
    return account_id, outcome.position


def _verify(request: Request, container: Container, token: str) -> Response:
    account_id, position = confirm_email(request, container, token)
    return with_position(JSONResponse({"userId": str(account_id), "emailVerified": True}), position)


@router.post("/api/auth/verify-email", response_model=None, responses=documented(EmailVerified))
def verify_email(body: VerifyBody, request: Request, container: ContainerDep) -> Response:
    """Confirm an email address with the one-time token from the verification mail."""
    return _verify(request, container, body.token)


@router.get("/api/auth/verify-email", response_model=None, responses=documented(EmailVerified))
def verify_email_link(
    request: Request,
    container: ContainerDep,
    token: Annotated[str, Query(min_length=1, max_length=200)],
) -> Response:
    """The link in the verification mail: same as the POST."""
    return _verify(request, container, token)


@router.post(
    "/api/auth/resend-verification",
    status_code=202,
    response_model=None,
    responses=documented(
        VerificationSent, status=202, errors={409: "CONFLICT", 429: "RATE_LIMITED"}
    ),
)
def resend_verification(
    principal: CurrentUser, request: Request, container: ContainerDep
) -> Response:
    """Mail a fresh verification link (the previous one stops working)."""
    rate_limit(request, "resend", principal.account_id)
    account_id = UUID(principal.account_id)
    outcome = execute(
        request,
        container,
        ResendVerification(account_id, _verification(container, account_id, container.bus.clock())),
    )
    return with_position(JSONResponse({"status": "sent"}, status_code=202), outcome.position)


def rate_limit(request: Request, family: Family, identity: str) -> None:
    """429 RATE_LIMITED when the caller's address or the account is over its limit."""
    limits = auth_limits(request)
    attempt = limits.attempt()
    limits.by_address(attempt, family, request)
    limits.by_account(attempt, family, identity)


def _client(request: Request) -> tuple[str, str]:
    ip = request.client.host if request.client else "unknown"
    return ip[:64], request.headers.get("User-Agent", "")[:300]


def _login_key(identifier: str) -> tuple[str, str] | None:
    if "@" in identifier:
        try:
            return "email", normalize_email(identifier)
        except InvalidEmail:
            return None
    return "username", identifier.strip().lower()


def _find_account(container: Container, identifier: str) -> Account | None:
    key = _login_key(identifier)
    if key is None:
        return None
    account_id = lookup_account_id(container.app, *key)
    return None if account_id is None else load_account(container, str(account_id))


def _bad_credentials() -> ApiError:
    return ApiError(401, "UNAUTHORIZED", "wrong email/username or password")


def _locked() -> ApiError:
    return ApiError(
        423, "ACCOUNT_LOCKED", "too many failed logins; the account is locked for a while"
    )


def _disabled() -> ApiError:
    return ApiError(403, "ACCOUNT_DISABLED", "the account is disabled")


def _token_response(
    container: Container, account: Account, pair: Any, csrf: str | None, position: int | None
) -> Response:
    settings = container.settings
    payload: dict[str, Any] = {"tokenType": "Bearer", "expiresIn": pair.access_expires_in}
    if csrf is None:
        payload = {"accessToken": pair.access_token, "refreshToken": pair.refresh_token, **payload}
    else:
        payload["csrfToken"] = csrf
    payload["user"] = account_summary(account)
    response = JSONResponse(payload)
    if csrf is not None:
        set_auth_cookies(
            response,
            pair.access_token,
            pair.refresh_token,
            csrf,
            pair.access_expires_in,
            int(settings.refresh_token_ttl.total_seconds()),
            settings.secure_cookies,
        )
    response.headers["Cache-Control"] = "no-store"
    return with_position(response, position)


@router.post(
    "/api/auth/login",
    response_model=None,
    responses=documented(
        TokenPair,
        errors={
            401: "UNAUTHORIZED",
            403: "ACCOUNT_DISABLED",
            423: "ACCOUNT_LOCKED",
            429: "RATE_LIMITED",
            503: "SERVICE_UNAVAILABLE",
        },
    ),
)
async def login(
    body: LoginBody, request: Request, container: ContainerDep, pool: HashPoolDep
) -> Response:
    """Exchange credentials for an access token (RS256) and a refresh token."""
    ip, user_agent = _client(request)
    now = container.bus.clock()
    limits = auth_limits(request)
    attempt = limits.attempt()  # failures count; a login that succeeds gives its hits back
    await run_in_threadpool(limits.by_address, attempt, "login", request)
    account = await run_in_threadpool(_find_account, container, body.email)
    # By account id when there is one, so its email and its username share one budget.
    identity = str(account.id) if account else ":".join(_login_key(body.email) or ("", body.email))
    await run_in_threadpool(limits.by_account, attempt, "login", identity)
    lockout = container.settings.lockout_duration

    if account is not None and account.is_locked(now):
        # Same answer whatever the password; the password is not even checked.
        await run_in_threadpool(
            execute,
            request,
            container,
            RecordLoginFailure(account.id, ip, user_agent, "locked", lockout),
        )
        raise _locked()

    password_ok = await pool.run(
        container.passwords.verify, account.password_hash if account else None, body.password
    )
    if account is None:
        log.info("login failed", extra={"reason": "unknown_account", "ip": ip})
        raise _bad_credentials()
    if not password_ok:
        outcome = await run_in_threadpool(
            execute,
            request,
            container,
            RecordLoginFailure(account.id, ip, user_agent, "bad_password", lockout),
        )
        log.info(
            "login failed", extra={"reason": "bad_password", "user_id": str(account.id), "ip": ip}
        )
        # The attempt that locks still answers 401; from the next one on the answer is 423.
        if outcome.result:
            raise _locked()
        raise _bad_credentials()

    new_hash = None
    if container.passwords.needs_rehash(account.password_hash):
        new_hash = await pool.run(container.passwords.hash, body.password)
    session_id, refresh_jti = uuid4().hex, secrets.token_hex(16)
    csrf = new_secret() if body.use_cookies else None
    request.state.actor = str(account.id)
    note_caller(str(account.id))  # the new session reads its own login at once
    command = RecordLoginSuccess(
        account.id,
        ip,
        user_agent,
        session_id,
        refresh_jti,
        container.tokens.refresh_expiry(now),
        new_hash,
    )
    outcome = await run_in_threadpool(execute, request, container, command)
    if isinstance(outcome.result, LoginRefused):
        raise _locked() if outcome.result.reason == "locked" else _disabled()
    fresh: Account = outcome.result
    await run_in_threadpool(attempt.give_back)
    pair = container.tokens.issue(
        str(fresh.id), fresh.role, session_id, refresh_jti, now, csrf_hash(csrf) if csrf else None
    )
    log.info("login succeeded", extra={"user_id": str(fresh.id), "ip": ip})
    return _token_response(container, fresh, pair, csrf, outcome.position)


@router.post(
    "/api/auth/refresh",
    response_model=None,
    responses=documented(
        TokenPair,
        errors={401: "UNAUTHORIZED", 403: ("FORBIDDEN", "ACCOUNT_DISABLED")},
    ),
    openapi_extra={"security": [{}, {"refreshCookie": [], "csrfToken": []}]},
)
def refresh(request: Request, container: ContainerDep, body: RefreshBody | None = None) -> Response:
    """Rotate the refresh token; replaying an old one revokes the whole session.

    Bearer mode sends ``refreshToken`` in the body; cookie mode sends no body (the
    ``sl_refresh`` cookie) and the ``X-CSRF-Token`` header."""
    token = body.refresh_token if body and body.refresh_token else None
    via_cookie = token is None
    if token is None:
        token = request.cookies.get(REFRESH_COOKIE)
    if not token:
        raise unauthorized("no refresh token")
    try:
        claims = container.tokens.verify(token, "refresh")
    except InvalidJWT as exc:
        raise unauthorized(f"invalid refresh token: {exc}") from None
    if via_cookie:
        check_csrf(request, claims.csrf)
    if load_account(container, claims.sub) is None:
        raise unauthorized("invalid refresh token")
    now = container.bus.clock()
    new_jti = secrets.token_hex(16)
    request.state.actor = claims.sub
    note_caller(claims.sub)
    outcome = execute(
        request,
        container,
        RotateSession(
            UUID(claims.sub), claims.sid, claims.jti, new_jti, container.tokens.refresh_expiry(now)
        ),
    )
    rotated, account = outcome.result
    if not rotated:
        log.warning("refresh token reuse: session revoked", extra={"user_id": claims.sub})
        raise unauthorized("refresh token reuse detected; the session was revoked")
    csrf = None
    if claims.csrf is not None:
        # Cookie sessions keep their CSRF token across rotations.
        csrf = request.cookies.get(CSRF_COOKIE) or request.headers.get("X-CSRF-Token")
    pair = container.tokens.issue(claims.sub, account.role, claims.sid, new_jti, now, claims.csrf)
    return _token_response(container, account, pair, csrf, outcome.position)


@router.post(
    "/api/auth/logout", status_code=204, response_model=None, responses=documented(status=204)
)
def logout(principal: CurrentUser, request: Request, container: ContainerDep) -> Response:
    """End this session: its refresh tokens and access tokens stop working at once."""
    outcome = execute(
        request, container, RevokeSession(UUID(principal.account_id), principal.session_id)
    )
    response = Response(status_code=204)
    if principal.via_cookie:
        clear_auth_cookies(response, container.settings.secure_cookies)
    return with_position(response, outcome.position)


@router.get("/.well-known/jwks.json", response_model=None, responses=documented(JsonWebKeySet))
def jwks(container: ContainerDep) -> JSONResponse:
    """Public keys that verify our access tokens (current and, during rotation, previous)."""
    return JSONResponse(
        container.tokens.keys.jwks(), headers={"Cache-Control": "public, max-age=300"}
    )
