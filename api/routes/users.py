"""The caller's profile, addresses and login history; seller applications; admin user
management; buyer reports against sellers."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field

from aggregates.accounts import Account
from api.auth import AdminUser, CurrentUser, Principal, require_role, require_verified
from api.deps import ContainerDep, PageDep, execute, path_id, reads, run_command, with_position
from api.errors import ApiError
from api.schemas import Address, RequestBody
from commands.accounts import (
    AddAddress,
    AdminUpdateAccount,
    ApplyForSeller,
    ApproveSeller,
    DeleteAccount,
    RemoveAddress,
    ReportSeller,
    RestoreListingRights,
    UpdateProfile,
)
from queries import accounts as q

router = APIRouter(tags=["users"])
READS_ACCOUNTS = [Depends(reads("accounts"))]


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
        "sellerApplication": None if application is None else {
            "status": application["status"],
            "shopName": application["shop_name"],
            "description": application["description"],
            "appliedAt": application["applied_at"].isoformat(),
        },
        "listingRights": "suspended" if account.listing_suspended else "active",
    }


# --- me ---------------------------------------------------------------------------------------
class ProfilePatch(RequestBody):
    display_name: str | None = Field(default=None, min_length=1, max_length=100)
    phone: str | None = Field(default=None, max_length=30, pattern=r"^(\+?[0-9 ()-]{6,30})?$")


@router.get("/api/users/me", dependencies=READS_ACCOUNTS)
def get_me(principal: CurrentUser, container: ContainerDep) -> dict[str, Any]:
    """The caller's profile."""
    view = q.get_user(container.engine, principal.account_id)
    return view if view is not None else profile_of(principal.account)


@router.patch("/api/users/me")
def patch_me(body: ProfilePatch, principal: CurrentUser, request: Request, container: ContainerDep) -> Response:
    """Change display name or phone (email and username are fixed)."""
    outcome = execute(
        request, container, UpdateProfile(UUID(principal.account_id), body.display_name, body.phone)
    )
    return with_position(JSONResponse(profile_of(outcome.result)), outcome.position)


@router.get("/api/users/me/login-history", dependencies=READS_ACCOUNTS)
def my_login_history(principal: CurrentUser, container: ContainerDep, page: PageDep) -> dict[str, Any]:
    """Every login attempt on the caller's account, newest first."""
    return q.login_history(container.engine, principal.account_id, page)


class AddressBody(Address):
    """The shippingAddress shape of seeds/003, plus an optional label and default flag."""

    label: str | None = Field(default=None, max_length=50)
    is_default: bool = False


@router.get("/api/users/me/addresses", dependencies=READS_ACCOUNTS)
def my_addresses(principal: CurrentUser, container: ContainerDep) -> dict[str, Any]:
    """The caller's saved addresses."""
    return q.list_addresses(container.engine, principal.account_id)


@router.post("/api/users/me/addresses", status_code=201)
def add_address(body: AddressBody, principal: CurrentUser, request: Request, container: ContainerDep) -> Response:
    """Save an address."""
    address = body.model_dump(by_alias=True)
    command = AddAddress(UUID(principal.account_id), str(uuid4()), address)
    return run_command(request, container, command, lambda view: (201, view), body)


@router.delete("/api/users/me/addresses/{address_id}", status_code=204)
def delete_address(address_id: str, principal: CurrentUser, request: Request, container: ContainerDep) -> Response:
    """Forget a saved address."""
    outcome = execute(request, container, RemoveAddress(UUID(principal.account_id), address_id))
    return with_position(Response(status_code=204), outcome.position)


class SellerApplicationBody(RequestBody):
    shop_name: str = Field(min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=2000)


@router.post("/api/users/me/seller-application", status_code=202)
def apply_for_seller(
    body: SellerApplicationBody,
    principal: Annotated[Principal, Depends(require_verified)],
    request: Request,
    container: ContainerDep,
) -> Response:
    """Ask to become a seller; an admin approves."""
    command = ApplyForSeller(UUID(principal.account_id), body.shop_name, body.description or "")

    def respond(account: Account) -> tuple[int, dict[str, Any]]:
        return 202, {"userId": str(account.id), **profile_of(account)["sellerApplication"]}

    return run_command(request, container, command, respond, body)


# --- admin ------------------------------------------------------------------------------------
@router.get("/api/users", dependencies=READS_ACCOUNTS)
def list_users(
    _: AdminUser,
    container: ContainerDep,
    page: PageDep,
    role: Literal["buyer", "seller", "admin"] | None = None,
    status: Literal["active", "disabled"] | None = None,
    seller_application: Annotated[
        Literal["pending", "approved"] | None, Query(alias="sellerApplication")
    ] = None,
    search: Annotated[str | None, Query(alias="q", max_length=100)] = None,
) -> dict[str, Any]:
    """All users (admin), filterable; newest first."""
    return q.list_users(
        container.engine, page, role=role, status=status, seller_status=seller_application, q=search
    )


@router.get("/api/users/{user_id}", dependencies=READS_ACCOUNTS)
def get_user(user_id: str, _: AdminUser, container: ContainerDep) -> dict[str, Any]:
    """One user (admin)."""
    view = q.get_user(container.engine, str(path_id(user_id, "NOT_FOUND", "user")))
    if view is None:
        raise ApiError(404, "NOT_FOUND", "user not found")
    return view


class AdminUserUpdate(RequestBody):
    role: Literal["buyer", "seller", "admin"] | None = None
    status: Literal["active", "disabled"] | None = None


def _not_self(principal: Principal, user_id: UUID) -> None:
    if str(user_id) == principal.account_id:
        raise ApiError(409, "CONFLICT", "admins cannot change or delete their own account here")


@router.put("/api/users/{user_id}")
def update_user(
    user_id: str, body: AdminUserUpdate, admin: AdminUser, request: Request, container: ContainerDep
) -> Response:
    """Change a user's role or status (admin). Disabling ends every session at once."""
    uid = path_id(user_id, "NOT_FOUND", "user")
    _not_self(admin, uid)
    outcome = execute(request, container, AdminUpdateAccount(uid, body.role, body.status))
    return with_position(JSONResponse(profile_of(outcome.result)), outcome.position)


@router.delete("/api/users/{user_id}", status_code=204)
def delete_user(user_id: str, admin: AdminUser, request: Request, container: ContainerDep) -> Response:
    """Delete a user (admin): the account is disabled for good; its history is kept."""
    uid = path_id(user_id, "NOT_FOUND", "user")
    _not_self(admin, uid)
    outcome = execute(request, container, DeleteAccount(uid))
    return with_position(Response(status_code=204), outcome.position)


@router.get("/api/users/{user_id}/login-history", dependencies=READS_ACCOUNTS)
def user_login_history(user_id: str, _: AdminUser, container: ContainerDep, page: PageDep) -> dict[str, Any]:
    """A user's login attempts (admin)."""
    uid = str(path_id(user_id, "NOT_FOUND", "user"))
    if q.get_user(container.engine, uid) is None:
        raise ApiError(404, "NOT_FOUND", "user not found")
    return q.login_history(container.engine, uid, page)


@router.post("/api/admin/sellers/{user_id}/approve")
def approve_seller(user_id: str, _: AdminUser, request: Request, container: ContainerDep) -> Response:
    """Approve a pending seller application (admin): the role becomes seller."""
    outcome = execute(request, container, ApproveSeller(path_id(user_id, "NOT_FOUND", "user")))
    return with_position(JSONResponse(profile_of(outcome.result)), outcome.position)


@router.post("/api/admin/sellers/{user_id}/restore-listing")
def restore_listing(user_id: str, _: AdminUser, request: Request, container: ContainerDep) -> Response:
    """Give a reported seller its listing rights back (admin); report counting starts afresh."""
    outcome = execute(request, container, RestoreListingRights(path_id(user_id, "NOT_FOUND", "user")))
    return with_position(JSONResponse(profile_of(outcome.result)), outcome.position)


# --- reports ----------------------------------------------------------------------------------
class ReportBody(RequestBody):
    reason: str = Field(min_length=1, max_length=2000)


@router.post("/api/sellers/{seller_id}/reports", status_code=201)
def report_seller(
    seller_id: str,
    body: ReportBody,
    principal: Annotated[Principal, Depends(require_role("buyer"))],
    request: Request,
    container: ContainerDep,
) -> Response:
    """Report a seller (buyers with a verified email; once per buyer and seller)."""
    require_verified(principal)
    sid = path_id(seller_id, "NOT_FOUND", "user")
    command = ReportSeller(sid, principal.account_id, body.reason)
    return run_command(
        request, container, command,
        lambda _suspended: (201, {"sellerId": str(sid), "status": "received"}), body,
    )
