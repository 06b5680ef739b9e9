"""Account commands and their handlers.

Passwords are hashed and verified before a command is sent (that is slow, bounded work done
off the event loop by the API); the commands carry hashes and outcomes, never a password.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError

from aggregates.accounts import (
    Account,
    AccountNotFound,
    AlreadyTaken,
    UniqueKey,
)
from commands.application import ShopledgerApplication
from commands.bus import Command, Handler, UnitOfWork
from commands.outbox import OutgoingMail


# --- registration and verification ----------------------------------------------------------
@dataclass(frozen=True)
class VerificationMail:
    """The pieces of the verification message; the link holds the one-time token in clear."""

    token_hash: str
    expires_at: datetime
    link: str


@dataclass(frozen=True)
class Register(Command):
    account_id: UUID
    email: str  # normalized
    username: str  # as typed
    username_key: str  # normalized
    password_hash: str
    display_name: str
    phone: str | None
    verification: VerificationMail | None
    role: str = "buyer"
    email_verified: bool = False


def register(uow: UnitOfWork, cmd: Register) -> Account:
    account = Account.register(
        cmd.account_id,
        email=cmd.email,
        username=cmd.username,
        password_hash=cmd.password_hash,
        display_name=cmd.display_name,
        phone=cmd.phone,
        role=cmd.role,
        email_verified=cmd.email_verified,
    )
    uow.claim(
        "email",
        cmd.email,
        account.id,
        AlreadyTaken("that email address is already registered", field="email"),
    )
    uow.claim(
        "username",
        cmd.username_key,
        account.id,
        AlreadyTaken("that username is already taken", field="username"),
    )
    uow.add(account)
    if cmd.verification is not None:
        account.issue_verification(cmd.verification.token_hash, cmd.verification.expires_at)
        uow.send_mail(_verification_mail(account, cmd.verification))
    return account


def _verification_mail(account: Account, v: VerificationMail) -> OutgoingMail:
    body = (
        f"Hello {account.display_name},\n\n"
        "please confirm your email address for shopledger by opening this link:\n\n"
        f"{v.link}\n\n"
        f"The link works once and expires at {v.expires_at:%Y-%m-%d %H:%M} UTC.\n"
        "If you did not sign up, ignore this message.\n"
    )
    return OutgoingMail(uuid4().hex, account.email, "Confirm your email address", body)


@dataclass(frozen=True)
class ResendVerification(Command):
    account_id: UUID
    verification: VerificationMail


def resend_verification(uow: UnitOfWork, cmd: ResendVerification) -> Account:
    account = uow.get(Account, cmd.account_id, AccountNotFound)
    account.issue_verification(cmd.verification.token_hash, cmd.verification.expires_at)
    uow.add(account)
    uow.send_mail(_verification_mail(account, cmd.verification))
    return account


@dataclass(frozen=True)
class VerifyEmail(Command):
    account_id: UUID
    token_hash: str


def verify_email(uow: UnitOfWork, cmd: VerifyEmail) -> Account:
    account = uow.get(Account, cmd.account_id, AccountNotFound)
    account.verify_email(cmd.token_hash, uow.now)
    uow.add(account)
    return account


# --- password change and reset ---------------------------------------------------------------
@dataclass(frozen=True)
class ChangePassword(Command):
    account_id: UUID
    password_hash: str
    keep_session: str | None


def change_password(uow: UnitOfWork, cmd: ChangePassword) -> Account:
    account = uow.get(Account, cmd.account_id, AccountNotFound)
    account.change_password(cmd.password_hash, cmd.keep_session)
    uow.add(account)
    return account


@dataclass(frozen=True)
class RequestPasswordReset(Command):
    account_id: UUID
    reset: VerificationMail  # the same pieces: token hash, expiry, link


def request_password_reset(uow: UnitOfWork, cmd: RequestPasswordReset) -> None:
    account = uow.get(Account, cmd.account_id, AccountNotFound)
    account.issue_password_reset(cmd.reset.token_hash, cmd.reset.expires_at)
    uow.add(account)
    body = (
        f"Hello {account.display_name},\n\n"
        "someone (we hope you) asked to reset your shopledger password. Choose a new one by\n"
        f"opening this link:\n\n{cmd.reset.link}\n\n"
        f"The link works once and expires at {cmd.reset.expires_at:%Y-%m-%d %H:%M} UTC.\n"
        "If you did not ask, ignore this message: your password stays as it is.\n"
    )
    uow.send_mail(OutgoingMail(uuid4().hex, account.email, "Reset your password", body))


@dataclass(frozen=True)
class ResetPassword(Command):
    account_id: UUID
    token_hash: str
    password_hash: str


def reset_password(uow: UnitOfWork, cmd: ResetPassword) -> Account:
    account = uow.get(Account, cmd.account_id, AccountNotFound)
    account.reset_password(cmd.token_hash, cmd.password_hash, uow.now)
    uow.add(account)
    return account


# --- login, sessions ------------------------------------------------------------------------
@dataclass(frozen=True)
class RecordLoginSuccess(Command):
    account_id: UUID
    ip: str
    user_agent: str
    session_id: str
    token_id: str
    session_expires_at: datetime
    new_password_hash: str | None = None  # parameters were upgraded: store the new hash


@dataclass(frozen=True)
class LoginRefused:
    """Outcome of a login the aggregate refused (recorded as a failed attempt)."""

    reason: str  # locked | disabled


def record_login_success(uow: UnitOfWork, cmd: RecordLoginSuccess) -> Account | LoginRefused:
    account = uow.get(Account, cmd.account_id, AccountNotFound)
    uow.add(account)
    if account.is_locked(uow.now) or not account.is_active:
        reason = "locked" if account.is_locked(uow.now) else "disabled"
        account.login_failed(uow.now, cmd.ip, cmd.user_agent, reason, timedelta(0))
        return LoginRefused(reason)
    account.login_succeeded(
        uow.now, cmd.ip, cmd.user_agent, cmd.session_id, cmd.token_id, cmd.session_expires_at
    )
    if cmd.new_password_hash:
        account.rehash_password(cmd.new_password_hash)
    return account


@dataclass(frozen=True)
class RecordLoginFailure(Command):
    account_id: UUID
    ip: str
    user_agent: str
    reason: str  # bad_password | locked
    lockout: timedelta


def record_login_failure(uow: UnitOfWork, cmd: RecordLoginFailure) -> bool:
    """Returns True when the account was already locked when the attempt was recorded
    (a concurrent attempt locked it): the caller then answers as for a locked account."""
    account = uow.get(Account, cmd.account_id, AccountNotFound)
    was_locked = account.is_locked(uow.now)
    account.login_failed(
        uow.now, cmd.ip, cmd.user_agent, "locked" if was_locked else cmd.reason, cmd.lockout
    )
    uow.add(account)
    return was_locked


@dataclass(frozen=True)
class RotateSession(Command):
    account_id: UUID
    session_id: str
    presented_token_id: str
    new_token_id: str
    expires_at: datetime


def rotate_session(uow: UnitOfWork, cmd: RotateSession) -> tuple[bool, Account]:
    account = uow.get(Account, cmd.account_id, AccountNotFound)
    rotated = account.rotate_session(
        cmd.session_id, cmd.presented_token_id, cmd.new_token_id, uow.now, cmd.expires_at
    )
    uow.add(account)
    return rotated, account


@dataclass(frozen=True)
class RevokeSession(Command):
    account_id: UUID
    session_id: str


def revoke_session(uow: UnitOfWork, cmd: RevokeSession) -> None:
    account = uow.get(Account, cmd.account_id, AccountNotFound)
    account.revoke_session(cmd.session_id, "logout")
    uow.add(account)


# --- profile and addresses ------------------------------------------------------------------
@dataclass(frozen=True)
class UpdateProfile(Command):
    account_id: UUID
    display_name: str | None
    phone: str | None


def update_profile(uow: UnitOfWork, cmd: UpdateProfile) -> Account:
    account = uow.get(Account, cmd.account_id, AccountNotFound)
    account.update_profile(cmd.display_name, cmd.phone)
    uow.add(account)
    return account


@dataclass(frozen=True)
class AddAddress(Command):
    account_id: UUID
    address_id: str
    address: dict[str, Any]


def add_address(uow: UnitOfWork, cmd: AddAddress) -> dict[str, Any]:
    account = uow.get(Account, cmd.account_id, AccountNotFound)
    account.add_address(cmd.address_id, cmd.address)
    uow.add(account)
    return {"addressId": cmd.address_id, **account.addresses[cmd.address_id]}


@dataclass(frozen=True)
class RemoveAddress(Command):
    account_id: UUID
    address_id: str


def remove_address(uow: UnitOfWork, cmd: RemoveAddress) -> None:
    account = uow.get(Account, cmd.account_id, AccountNotFound)
    account.remove_address(cmd.address_id)
    uow.add(account)


# --- roles, moderation ----------------------------------------------------------------------
@dataclass(frozen=True)
class ApplyForSeller(Command):
    account_id: UUID
    shop_name: str
    description: str


def apply_for_seller(uow: UnitOfWork, cmd: ApplyForSeller) -> Account:
    account = uow.get(Account, cmd.account_id, AccountNotFound)
    account.apply_for_seller(cmd.shop_name, cmd.description, uow.now)
    uow.add(account)
    return account


@dataclass(frozen=True)
class ApproveSeller(Command):
    account_id: UUID


def approve_seller(uow: UnitOfWork, cmd: ApproveSeller) -> Account:
    account = uow.get(Account, cmd.account_id, AccountNotFound)
    account.approve_seller()
    uow.add(account)
    return account


@dataclass(frozen=True)
class RejectSeller(Command):
    account_id: UUID
    reason: str


def reject_seller(uow: UnitOfWork, cmd: RejectSeller) -> Account:
    account = uow.get(Account, cmd.account_id, AccountNotFound)
    account.reject_seller(cmd.reason, uow.now)
    uow.add(account)
    return account


@dataclass(frozen=True)
class AdminUpdateAccount(Command):
    account_id: UUID
    role: str | None
    status: str | None  # active | disabled


def admin_update_account(uow: UnitOfWork, cmd: AdminUpdateAccount) -> Account:
    account = uow.get(Account, cmd.account_id, AccountNotFound)
    if cmd.role is not None:
        account.change_role(cmd.role)
    if cmd.status == "disabled":
        account.disable("admin")
    elif cmd.status == "active":
        account.enable()
    uow.add(account)
    return account


@dataclass(frozen=True)
class DeleteAccount(Command):
    account_id: UUID


def delete_account(uow: UnitOfWork, cmd: DeleteAccount) -> None:
    account = uow.get(Account, cmd.account_id, AccountNotFound)
    account.delete()
    uow.add(account)


@dataclass(frozen=True)
class ReportSeller(Command):
    seller_id: UUID
    reporter_id: str
    reason: str


def report_seller(uow: UnitOfWork, cmd: ReportSeller) -> bool:
    seller = uow.get(Account, cmd.seller_id, AccountNotFound)
    suspended = seller.report(cmd.reporter_id, cmd.reason, uow.now)
    uow.add(seller)
    return suspended


@dataclass(frozen=True)
class RestoreListingRights(Command):
    seller_id: UUID


def restore_listing_rights(uow: UnitOfWork, cmd: RestoreListingRights) -> Account:
    seller = uow.get(Account, cmd.seller_id, AccountNotFound)
    seller.restore_listing_rights()
    uow.add(seller)
    return seller


@dataclass(frozen=True)
class EnsureAdmin(Command):
    """create-admin: register an admin, or promote and verify the existing account."""

    register: Register


def ensure_admin(uow: UnitOfWork, cmd: EnsureAdmin) -> tuple[bool, Account]:
    owner = lookup_account_id(uow.app, "email", cmd.register.email)
    if owner is not None:
        account = uow.get(Account, owner, AccountNotFound)
        account.change_role("admin")
        account.mark_verified(uow.now)
        account.enable()
        uow.add(account)
        return False, account
    return True, register(uow, cmd.register)


def lookup_account_id(app: ShopledgerApplication, identifier_kind: str, key: str) -> UUID | None:
    """The account owning an email or username key, straight from the event store."""
    try:
        claimed: UniqueKey = app.repository.get(UniqueKey.create_id(identifier_kind, key))
    except AggregateNotFoundError:
        return None
    return claimed.owner_id


HANDLERS: dict[type, Handler] = {
    Register: register,
    ResendVerification: resend_verification,
    ChangePassword: change_password,
    RequestPasswordReset: request_password_reset,
    ResetPassword: reset_password,
    VerifyEmail: verify_email,
    RecordLoginSuccess: record_login_success,
    RecordLoginFailure: record_login_failure,
    RotateSession: rotate_session,
    RevokeSession: revoke_session,
    UpdateProfile: update_profile,
    AddAddress: add_address,
    RemoveAddress: remove_address,
    ApplyForSeller: apply_for_seller,
    ApproveSeller: approve_seller,
    RejectSeller: reject_seller,
    AdminUpdateAccount: admin_update_account,
    DeleteAccount: delete_account,
    ReportSeller: report_seller,
    RestoreListingRights: restore_listing_rights,
    EnsureAdmin: ensure_admin,
}
