"""Password change and reset: change it signed in, or ask for a reset link by email and set a
new one with its token. All three are rate limited per client address and per account
(api/authlimits.py, family ``password``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, Field

from aggregates.accounts import (
    Account,
    InvalidToken,
    WeakPassword,
    check_password_policy,
    normalize_email,
)
from aggregates.errors import DomainError
from api.auth import CurrentUser, load_account
from api.deps import ContainerDep, execute, with_position
from api.openapi import documented, examples
from api.routes.auth import HashPoolDep, parse_mailed_token, rate_limit
from api.schemas import RequestBody, ResponseBody
from api.validation import domain_rule
from commands.accounts import (
    ChangePassword,
    RequestPasswordReset,
    ResetPassword,
    VerificationMail,
    lookup_account_id,
)
from commands.credentials import new_secret, token_hash
from shopledger.bootstrap import Container

router = APIRouter(tags=["auth"])

#: Where the reset mail's link points: the front end's page (it POSTs the token with the new
#: password to /api/auth/reset-password).
RESET_PAGE = "/reset-password"
NewPassword = Annotated[
    str, Field(min_length=1, max_length=1024), AfterValidator(domain_rule(check_password_policy))
]


class ChangePasswordBody(RequestBody):
    model_config = examples(
        {"currentPassword": "Taipei101-sunrise", "newPassword": "Alishan-tea-2027"}
    )

    current_password: str = Field(min_length=1, max_length=1024)
    new_password: NewPassword


class ForgotPasswordBody(RequestBody):
    model_config = examples({"email": "xiaoming.wang@example.com.tw"})

    email: Annotated[str, AfterValidator(domain_rule(normalize_email))] = Field(
        min_length=3, max_length=320
    )


class ResetPasswordBody(RequestBody):
    model_config = examples(
        {
            "token": "5f0c2b8e9a7d4c1e8b3a6f2d1e0c9b8a.Q2hhbmdlIG1lIGZvciByZWFs",
            "newPassword": "Alishan-tea-2027",
        }
    )

    token: str = Field(min_length=1, max_length=200)
    new_password: NewPassword


class ResetRequested(ResponseBody):
    status: Literal["sent"] = Field(
        description='always "sent": the answer never says whether the address has an account'
    )


class PasswordReset(ResponseBody):
    user_id: str
    password_reset: bool


def _policy(password: str, account: Account) -> None:
    """The policy with the account's own names (not the email or username as the password)."""
    try:
        check_password_policy(password, email=account.email, username=account.username)
    except WeakPassword as exc:
        raise WeakPassword(exc.message, field="newPassword") from None


@router.post(
    "/api/auth/change-password",
    status_code=204,
    response_model=None,
    responses=documented(status=204, errors={400: "VALIDATION_ERROR", 429: "RATE_LIMITED"}),
)
async def change_password(
    body: ChangePasswordBody,
    principal: CurrentUser,
    request: Request,
    container: ContainerDep,
    pool: HashPoolDep,
) -> Response:
    """Change the caller's password (the current one required); every other session ends."""
    await run_in_threadpool(rate_limit, request, "password", principal.account_id)
    account = principal.account
    if not await pool.run(container.passwords.verify, account.password_hash, body.current_password):
        raise DomainError(
            "the current password is wrong", field="currentPassword", problem="WRONG_PASSWORD"
        )
    _policy(body.new_password, account)
    password_hash = await pool.run(container.passwords.hash, body.new_password)
    command = ChangePassword(account.id, password_hash, principal.session_id)
    outcome = await run_in_threadpool(execute, request, container, command)
    return with_position(Response(status_code=204), outcome.position)


def reset_link(container: Container, token: str) -> str:
    base = container.settings.frontend_url or container.settings.public_url
    return f"{base}{RESET_PAGE}?{urlencode({'token': token})}"


def _request_reset(request: Request, container: Container, email: str) -> int | None:
    account_id = lookup_account_id(container.app, "email", email)
    account = None if account_id is None else load_account(container, str(account_id))
    if account is None or not account.is_active:
        return None  # the same answer: nobody learns which addresses have accounts
    secret = new_secret()
    token = f"{account.id.hex}.{secret}"
    reset = VerificationMail(
        token_hash(secret),
        container.bus.clock() + container.settings.password_reset_ttl,
        reset_link(container, token),
    )
    outcome = execute(request, container, RequestPasswordReset(account.id, reset))
    position: int | None = outcome.position
    return position


@router.post(
    "/api/auth/forgot-password",
    status_code=202,
    response_model=None,
    responses=documented(ResetRequested, status=202, errors={429: "RATE_LIMITED"}),
)
def forgot_password(
    body: ForgotPasswordBody, request: Request, container: ContainerDep
) -> Response:
    """Mail a password reset link to the address, if it has an account (202 either way)."""
    email = normalize_email(body.email)
    rate_limit(request, "password", email)
    position = _request_reset(request, container, email)
    return with_position(JSONResponse({"status": "sent"}, status_code=202), position)


@router.post(
    "/api/auth/reset-password",
    response_model=None,
    responses=documented(PasswordReset, errors={400: "VALIDATION_ERROR", 429: "RATE_LIMITED"}),
)
async def reset_password(
    body: ResetPasswordBody, request: Request, container: ContainerDep, pool: HashPoolDep
) -> Response:
    """Set a new password with the token from the reset mail; every session ends."""
    account_id, hashed = parse_mailed_token(body.token, "password reset")
    await run_in_threadpool(rate_limit, request, "password", str(account_id))
    account = await run_in_threadpool(load_account, container, str(account_id))
    if account is None:
        raise InvalidToken("the password reset token is unknown, used or expired")
    _policy(body.new_password, account)
    password_hash = await pool.run(container.passwords.hash, body.new_password)
    command = ResetPassword(account.id, hashed, password_hash)
    outcome = await run_in_threadpool(execute, request, container, command)
    answer: dict[str, Any] = {"userId": str(account.id), "passwordReset": True}
    return with_position(JSONResponse(answer), outcome.position)
