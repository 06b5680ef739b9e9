"""The caller's profile, addresses and login history; seller applications; admin user
management; buyer reports against sellers."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field

from aggregates.accounts import Account
from aggregates.customers import tag_key
from api.auth import AdminUser, CurrentUser, Principal, require_role, require_verified
from api.deps import ContainerDep, PageDep, execute, path_id, reads, run_command, with_position
from api.errors import ApiError
from api.openapi import IDEMPOTENT, documented, examples
from api.responses import (
    AddressList,
    LoginHistory,
    SavedAddress,
    SellerApplicationReceipt,
    SellerReportReceipt,
    UserList,
    UserProfile,
)
from api.schemas import Address, RequestBody
from api.validation import MultilineText, Text
from commands.accounts import (
    AddAddress,
    AdminUpdateAccount,
    ApplyForSeller,
    ApproveSeller,
    DeleteAccount,
    RejectSeller,
    RemoveAddress,
    ReportSeller,
    RestoreListingRights,
    UpdateProfile,
)
from queries import accounts as q
from queries import customers
from queries.loyalty import level_of
from shopledger.bootstrap import Container

router = APIRouter(tags=["users"])
READS_ACCOUNTS = [Depends(reads("accounts"))]
READS_ADMIN = [Depends(reads("accounts", "customers"))]


def profile_of(account: Account) -> dict[str, Any]:
    """The profile straight from the aggregate a command just changed."""
    application = account.seller_application
    return {
        "userId": str(account.id),
        "email": account.email,
        "username": account.username,
        "displayName": account.display_name,
        "phone": account.phone,
        "role": account.role,
        "status": account.status,
        "deleted": account.deleted,
        "emailVerified": account.email_verified,
        "sellerApplication": None
        if application is None
        else {
            "status": application["status"],
            "shopName": application["shop_name"],
            "description": application["description"],
            "appliedAt": application["applied_at"].isoformat(),
            "rejectionReason": application.get("rejection_reason"),
        },
        "listingRights": "suspended" if account.listing_suspended else "active",
    }


# --- me ---------------------------------------------------------------------------------------
class ProfilePatch(RequestBody):
    model_config = examples({"displayName": "王小明", "phone": "0912-345-678"})

    display_name: Text | None = Field(default=None, min_length=1, max_length=100)
    phone: str | None = Field(default=None, max_length=30, pattern=r"^(\+?[0-9 ()-]{6,30})?$")


@router.get(
    "/api/users/me",
    dependencies=[Depends(reads("accounts", "loyalty"))],
    response_model=None,
    responses=documented(UserProfile),
)
def get_me(principal: CurrentUser, container: ContainerDep) -> dict[str, Any]:
    """The caller's profile, with the loyalty membership level."""
    view = q.get_user(container.engine, principal.account_id)
    profile = view if view is not None else profile_of(principal.account)
    rules = container.settings.loyalty_rules()
    return {**profile, "level": level_of(container.engine, principal.account_id, rules)}


@router.patch("/api/users/me", response_model=None, responses=documented(UserProfile))
def patch_me(
    body: ProfilePatch, principal: CurrentUser, request: Request, container: ContainerDep
) -> Response:
    """Change display name or phone (email and username are fixed)."""
    outcome = execute(
        request, container, UpdateProfile(UUID(principal.account_id), body.display_name, body.phone)
    )
    return with_position(JSONResponse(profile_of(outcome.result)), outcome.position)


@router.get(
    "/api/users/me/login-history",
    dependencies=READS_ACCOUNTS,
    response_model=None,
    responses=documented(LoginHistory),
)
def my_login_history(
    principal: CurrentUser, container: ContainerDep, page: PageDep
) -> dict[str, Any]:
    """Every login attempt on the caller's account, newest first."""
    return q.login_history(container.engine, principal.account_id, page)


class AddressBody(Address):
    """The shippingAddress shape of seeds/003, plus an optional label and default flag."""

    model_config = examples(
        {
            "name": "王小明",
            "phone": "0912-345-678",
            "street": "信義路五段7號",
            "city": "台北市",
            "district": "信義區",
            "postalCode": "110",
            "country": "TW",
            "label": "家",
            "isDefault": True,
        }
    )

    label: Text | None = Field(default=None, max_length=50)
    is_default: bool = False


@router.get(
    "/api/users/me/addresses",
    dependencies=READS_ACCOUNTS,
    response_model=None,
    responses=documented(AddressList),
)
def my_addresses(principal: CurrentUser, container: ContainerDep) -> dict[str, Any]:
    """The caller's saved addresses."""
    return q.list_addresses(container.engine, principal.account_id)


@router.post(
    "/api/users/me/addresses",
    status_code=201,
    response_model=None,
    responses=documented(SavedAddress, status=201, errors={409: "CONFLICT"}),
    openapi_extra=IDEMPOTENT,
)
def add_address(
    body: AddressBody, principal: CurrentUser, request: Request, container: ContainerDep
) -> Response:
    """Save an address."""
    address = body.model_dump(by_alias=True)
    command = AddAddress(UUID(principal.account_id), str(uuid4()), address)
    return run_command(request, container, command, lambda view: (201, view), body)


@router.delete(
    "/api/users/me/addresses/{address_id}",
    status_code=204,
    response_model=None,
    responses=documented(status=204, errors={404: "NOT_FOUND"}),
)
def delete_address(
    address_id: str, principal: CurrentUser, request: Request, container: ContainerDep
) -> Response:
    """Forget a saved address."""
    outcome = execute(request, container, RemoveAddress(UUID(principal.account_id), address_id))
    return with_position(Response(status_code=204), outcome.position)


class SellerApplicationBody(RequestBody):
    model_config = examples(
        {"shopName": "阿明手作皮件", "description": "台北市大安區的手工皮件工作室"}
    )

    shop_name: Text = Field(min_length=1, max_length=100)
    description: MultilineText | None = Field(default=None, max_length=2000)


@router.post(
    "/api/users/me/seller-application",
    status_code=202,
    response_model=None,
    responses=documented(SellerApplicationReceipt, status=202, errors={409: "CONFLICT"}),
    openapi_extra=IDEMPOTENT,
)
def apply_for_seller(
    body: SellerApplicationBody,
    principal: Annotated[Principal, Depends(require_verified)],
    request: Request,
    container: ContainerDep,
) -> Response:
    """Ask to become a seller; an admin approves."""
    command = ApplyForSeller(UUID(principal.account_id), body.shop_name, body.description or "")

    def respond(account: Account) -> tuple[int, dict[str, Any]]:
        application = profile_of(account)["sellerApplication"]
        del application["rejectionReason"]  # a new application is pending: nothing to say
        return 202, {"userId": str(account.id), **application}

    return run_command(request, container, command, respond, body)


# --- admin ------------------------------------------------------------------------------------
def with_tags(container: Container, users: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Admin views carry each user's customer tags."""
    tags = customers.tags_of(container.engine, [u["userId"] for u in users])
    return [{**u, "tags": tags[u["userId"]]} for u in users]


@router.get(
    "/api/users",
    dependencies=READS_ADMIN,
    response_model=None,
    responses=documented(UserList),
)
def list_users(
    _: AdminUser,
    container: ContainerDep,
    page: PageDep,
    role: Literal["buyer", "seller", "admin", "auditor"] | None = None,
    status: Literal["active", "disabled"] | None = None,
    seller_application: Annotated[
        Literal["pending", "approved", "rejected"] | None, Query(alias="sellerApplication")
    ] = None,
    search: Annotated[str | None, Query(alias="q", max_length=100)] = None,
    tag: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    """All users (admin), filterable (``tag``: customer tag, case-insensitive); newest first."""
    found = q.list_users(
        container.engine,
        page,
        role=role,
        status=status,
        seller_status=seller_application,
        q=search,
        tag_key=None if tag is None else tag_key(tag),
    )
    return {**found, "users": with_tags(container, found["users"])}


@router.get(
    "/api/users/{user_id}",
    dependencies=READS_ADMIN,
    response_model=None,
    responses=documented(UserProfile, errors={404: "NOT_FOUND"}),
)
def get_user(user_id: str, _: AdminUser, container: ContainerDep) -> dict[str, Any]:
    """One user (admin), with its customer tags."""
    view = q.get_user(container.engine, str(path_id(user_id, "NOT_FOUND", "user")))
    if view is None:
        raise ApiError(404, "NOT_FOUND", "user not found")
    return with_tags(container, [view])[0]


class AdminUserUpdate(RequestBody):
    model_config = examples({"status": "disabled"}, {"role": "seller"})

    role: Literal["buyer", "seller", "admin", "auditor"] | None = None
    status: Literal["active", "disabled"] | None = None


def _not_self(principal: Principal, user_id: UUID) -> None:
    if str(user_id) == principal.account_id:
        raise ApiError(409, "CONFLICT", "admins cannot change or delete their own account here")


@router.put(
    "/api/users/{user_id}",
    response_model=None,
    responses=documented(UserProfile, errors={404: "NOT_FOUND", 409: "CONFLICT"}),
)
def update_user(
    user_id: str, body: AdminUserUpdate, admin: AdminUser, request: Request, container: ContainerDep
) -> Response:
    """Change a user's role or status (admin).

    Disabling ends every session at once; admins cannot change their own account here."""
    uid = path_id(user_id, "NOT_FOUND", "user")
    _not_self(admin, uid)
    outcome = execute(request, container, AdminUpdateAccount(uid, body.role, body.status))
    return with_position(JSONResponse(profile_of(outcome.result)), outcome.position)


@router.delete(
    "/api/users/{user_id}",
    status_code=204,
    response_model=None,
    responses=documented(status=204, errors={404: "NOT_FOUND", 409: "CONFLICT"}),
)
def delete_user(
    user_id: str, admin: AdminUser, request: Request, container: ContainerDep
) -> Response:
    """Delete a user (admin).

    The account is disabled for good; its history is kept."""
    uid = path_id(user_id, "NOT_FOUND", "user")
    _not_self(admin, uid)
    outcome = execute(request, container, DeleteAccount(uid))
    return with_position(Response(status_code=204), outcome.position)


@router.get(
    "/api/users/{user_id}/login-history",
    dependencies=READS_ACCOUNTS,
    response_model=None,
    responses=documented(LoginHistory, errors={404: "NOT_FOUND"}),
)
def user_login_history(
    user_id: str, _: AdminUser, container: ContainerDep, page: PageDep
) -> dict[str, Any]:
    """A user's login attempts (admin)."""
    uid = str(path_id(user_id, "NOT_FOUND", "user"))
    if q.get_user(container.engine, uid) is None:
        raise ApiError(404, "NOT_FOUND", "user not found")
    return q.login_history(container.engine, uid, page)


@router.post(
    "/api/admin/sellers/{user_id}/approve",
    response_model=None,
    responses=documented(UserProfile, errors={404: "NOT_FOUND", 409: "CONFLICT"}),
)
def approve_seller(
    user_id: str, _: AdminUser, request: Request, container: ContainerDep
) -> Response:
    """Approve a pending seller application (admin).

    The role becomes seller (in the user's next token)."""
    outcome = execute(request, container, ApproveSeller(path_id(user_id, "NOT_FOUND", "user")))
    return with_position(JSONResponse(profile_of(outcome.result)), outcome.position)


class RejectionBody(RequestBody):
    model_config = examples({"reason": "請補上營業登記證明後再申請"})

    reason: MultilineText = Field(min_length=1, max_length=1000)


@router.post(
    "/api/admin/sellers/{user_id}/reject",
    response_model=None,
    responses=documented(UserProfile, errors={404: "NOT_FOUND", 409: "CONFLICT"}),
)
def reject_seller(
    user_id: str, body: RejectionBody, _: AdminUser, request: Request, container: ContainerDep
) -> Response:
    """Refuse a pending seller application with a reason (admin).

    The applicant is notified (SELLER_REJECTED) and may apply again."""
    command = RejectSeller(path_id(user_id, "NOT_FOUND", "user"), body.reason.strip())
    outcome = execute(request, container, command)
    return with_position(JSONResponse(profile_of(outcome.result)), outcome.position)


@router.post(
    "/api/admin/sellers/{user_id}/restore-listing",
    response_model=None,
    responses=documented(UserProfile, errors={404: "NOT_FOUND", 409: "CONFLICT"}),
)
def restore_listing(
    user_id: str, _: AdminUser, request: Request, container: ContainerDep
) -> Response:
    """Give a reported seller its listing rights back (admin).

    Report counting starts afresh."""
    outcome = execute(
        request, container, RestoreListingRights(path_id(user_id, "NOT_FOUND", "user"))
    )
    return with_position(JSONResponse(profile_of(outcome.result)), outcome.position)


# --- reports ----------------------------------------------------------------------------------
class ReportBody(RequestBody):
    model_config = examples({"reason": "商品與描述不符，疑似仿冒品"})

    reason: MultilineText = Field(min_length=1, max_length=2000)


@router.post(
    "/api/sellers/{seller_id}/reports",
    status_code=201,
    response_model=None,
    responses=documented(
        SellerReportReceipt,
        status=201,
        errors={403: "EMAIL_NOT_VERIFIED", 404: "NOT_FOUND", 409: "CONFLICT"},
    ),
    openapi_extra=IDEMPOTENT,
)
def report_seller(
    seller_id: str,
    body: ReportBody,
    principal: Annotated[Principal, Depends(require_role("buyer"))],
    request: Request,
    container: ContainerDep,
) -> Response:
    """Report a seller.

    Buyers with a verified email, once per buyer and seller; enough reports suspend the
    seller's listing rights."""
    require_verified(principal)
    sid = path_id(seller_id, "NOT_FOUND", "user")
    command = ReportSeller(sid, principal.account_id, body.reason)
    return run_command(
        request,
        container,
        command,
        lambda _suspended: (201, {"sellerId": str(sid), "status": "received"}),
        body,
    )
