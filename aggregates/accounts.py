"""Accounts: registration, verification, login attempts and lockout, sessions, roles, reports.

Pure domain code. Time comes in as arguments (``at``), secrets only as hashes: the aggregate
never sees a password or a token in clear.
"""

from __future__ import annotations

import hmac
import re
import unicodedata
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID, uuid5

from email_validator import EmailNotValidError, validate_email
from eventsourcing.domain import Aggregate, event

from aggregates.errors import Conflict, DomainError, NotFound

#: An ``auditor`` reads every order and the operation log and changes nothing (the API refuses
#: its writes in one place).
ROLES = ("buyer", "seller", "admin", "auditor")
MAX_FAILED_LOGINS = 5
#: A seller reported by MORE than this many distinct buyers loses listing rights.
REPORT_THRESHOLD = 5
MAX_ADDRESSES = 20
USERNAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]{1,28})[A-Za-z0-9]$")
PASSWORD_MIN, PASSWORD_MAX = 8, 128
# A few of the most common passwords (NIST SP 800-63B: refuse known-compromised values).
COMMON_PASSWORDS = frozenset(
    {
        "password",
        "password1",
        "password123",
        "12345678",
        "123456789",
        "1234567890",
        "qwertyuiop",
        "qwerty123",
        "iloveyou",
        "11111111",
        "00000000",
        "abc12345",
        "abcd1234",
        "passw0rd",
        "letmein1",
        "welcome1",
        "admin123",
        "1qaz2wsx",
        "88888888",
    }
)


# --- errors ---------------------------------------------------------------------------------
class InvalidEmail(DomainError):
    """The email address is not well formed."""


class InvalidUsername(DomainError):
    """Usernames: 3-30 letters, digits, '.', '_' or '-', starting and ending alphanumeric."""


class WeakPassword(DomainError):
    """The password breaks the policy."""


class AccountNotFound(NotFound):
    pass


class AlreadyTaken(Conflict):
    """Email or username already registered."""


class InvalidToken(DomainError):
    """An email verification token that is unknown, used or expired."""


class SessionInvalid(DomainError):
    """A refresh token whose session is unknown, expired or revoked."""


class AccountDisabled(DomainError):
    pass


class AccountLocked(DomainError):
    pass


class EmailNotVerified(DomainError):
    pass


class NotAllowed(DomainError):
    """The caller's role may not do this (403)."""


class AddressNotFound(NotFound):
    pass


# --- value rules ----------------------------------------------------------------------------
def normalize_email(raw: str) -> str:
    """The canonical form used for uniqueness and login: validated, NFKC, lower-cased."""
    candidate = unicodedata.normalize("NFKC", raw.strip())
    try:
        info = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(f"not a valid email address: {exc}") from None
    return info.normalized.lower()


def normalize_username(raw: str) -> str:
    """Usernames keep their spelling for display; this is the case-insensitive key."""
    username = raw.strip()
    if not USERNAME_RE.fullmatch(username):
        raise InvalidUsername(
            "username must be 3-30 characters: letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit"
        )
    return username.lower()


def check_password_policy(password: str, *, email: str = "", username: str = "") -> None:
    """NIST SP 800-63B style: length, not a known common password, not the account's own name."""
    length = len(password)
    if length < PASSWORD_MIN:
        raise WeakPassword(f"password must be at least {PASSWORD_MIN} characters")
    if length > PASSWORD_MAX:
        raise WeakPassword(f"password must be at most {PASSWORD_MAX} characters")
    if not password.strip():
        raise WeakPassword("password must not be only whitespace")
    if len(set(password)) < 3:
        raise WeakPassword("password must use at least 3 different characters")
    folded = password.casefold()
    if folded in COMMON_PASSWORDS:
        raise WeakPassword("password is too common")
    for name in (email, email.split("@", 1)[0] if email else "", username):
        if name and folded == name.casefold():
            raise WeakPassword("password must not be your email or username")


# --- unique keys ----------------------------------------------------------------------------
_KEY_NAMESPACE = UUID("6f1a4c1e-5b43-4f7c-9f38-0a6f1d2c9e11")


class UniqueKey(Aggregate):
    """Claims a unique value (an email, a username) for an owner.

    Its id is derived from the value, so two commands claiming the same value both try to
    create version 1 of the same aggregate and the event store lets exactly one of them win.
    It doubles as the lookup from an email or username to its account.
    """

    if TYPE_CHECKING:  # the @event decorators below create these classes
        Claimed: ClassVar[Any]

    @staticmethod
    def create_id(kind: str, value: str) -> UUID:
        return uuid5(_KEY_NAMESPACE, f"{kind}:{value}")

    @event("Claimed")
    def __init__(self, kind: str, value: str, owner_id: UUID) -> None:
        self.kind = kind
        self.value = value
        self.owner_id = owner_id


# --- the account ----------------------------------------------------------------------------
class Account(Aggregate):
    """A user: buyer, seller, admin or auditor."""

    if TYPE_CHECKING:  # the @event decorators below create these classes
        Registered: ClassVar[Any]
        VerificationIssued: ClassVar[Any]
        EmailVerified: ClassVar[Any]
        LoginSucceeded: ClassVar[Any]
        LoginFailed: ClassVar[Any]
        PasswordRehashed: ClassVar[Any]
        PasswordResetIssued: ClassVar[Any]
        PasswordChanged: ClassVar[Any]
        SessionRotated: ClassVar[Any]
        SessionRevoked: ClassVar[Any]
        ProfileUpdated: ClassVar[Any]
        AddressAdded: ClassVar[Any]
        AddressRemoved: ClassVar[Any]
        SellerApplied: ClassVar[Any]
        SellerApproved: ClassVar[Any]
        SellerRejected: ClassVar[Any]
        RoleChanged: ClassVar[Any]
        Disabled: ClassVar[Any]
        Enabled: ClassVar[Any]
        Deleted: ClassVar[Any]
        Reported: ClassVar[Any]
        ListingRightsSuspended: ClassVar[Any]
        ListingRightsRestored: ClassVar[Any]

    @event("Registered")
    def __init__(
        self,
        email: str,
        username: str,
        password_hash: str,
        display_name: str,
        phone: str | None,
        role: str,
        email_verified: bool = False,
    ) -> None:
        self.email = email
        self.username = username
        self.password_hash = password_hash
        self.display_name = display_name
        self.phone = phone
        self.role = role
        self.email_verified = email_verified
        self.status = "active"
        self.deleted = False
        self.verification: dict[str, Any] | None = None
        self.password_reset: dict[str, Any] | None = None
        self.failed_logins = 0
        self.locked_until: datetime | None = None
        self.sessions: dict[str, dict[str, Any]] = {}
        self.addresses: dict[str, dict[str, Any]] = {}
        self.seller_application: dict[str, Any] | None = None
        self.reporters: list[str] = []
        self.listing_suspended = False

    @classmethod
    def register(
        cls,
        account_id: UUID,
        *,
        email: str,
        username: str,
        password_hash: str,
        display_name: str,
        phone: str | None,
        role: str = "buyer",
        email_verified: bool = False,
    ) -> Account:
        """Create with a chosen id (the verification link names it before the save)."""
        if role not in ROLES:
            raise DomainError(f"role must be one of {', '.join(ROLES)}")
        return cls._create(
            cls.Registered,
            id=account_id,
            email=email,
            username=username,
            password_hash=password_hash,
            display_name=display_name,
            phone=phone,
            role=role,
            email_verified=email_verified,
        )

    # --- queries on state --------------------------------------------------------------
    @property
    def is_active(self) -> bool:
        return self.status == "active"

    @property
    def can_list_products(self) -> bool:
        """Sellers lose listing rights after too many distinct buyer reports."""
        return self.role in ("seller", "admin") and self.is_active and not self.listing_suspended

    def is_locked(self, at: datetime) -> bool:
        return self.locked_until is not None and at < self.locked_until

    def session_valid(self, session_id: str, at: datetime) -> bool:
        session = self.sessions.get(session_id)
        return session is not None and at < session["expires_at"]

    # --- email verification ------------------------------------------------------------
    def issue_verification(self, token_hash: str, expires_at: datetime) -> None:
        if self.email_verified:
            raise Conflict("the email address is already verified")
        self._verification_issued(token_hash, expires_at)

    @event("VerificationIssued")
    def _verification_issued(self, token_hash: str, expires_at: datetime) -> None:
        self.verification = {"token_hash": token_hash, "expires_at": expires_at}

    def verify_email(self, token_hash: str, at: datetime) -> None:
        pending = self.verification
        if self.email_verified or pending is None:
            raise InvalidToken("the verification token is unknown, used or expired")
        if (
            not hmac.compare_digest(pending["token_hash"], token_hash)
            or at >= pending["expires_at"]
        ):
            raise InvalidToken("the verification token is unknown, used or expired")
        self._email_verified(at)

    @event("EmailVerified")
    def _email_verified(self, at: datetime) -> None:
        self.email_verified = True
        self.verification = None

    def mark_verified(self, at: datetime) -> None:
        """An admin (or the create-admin tool) vouches for the address."""
        if not self.email_verified:
            self._email_verified(at)

    # --- login ---------------------------------------------------------------------------
    def login_succeeded(
        self,
        at: datetime,
        ip: str,
        user_agent: str,
        session_id: str,
        token_id: str,
        session_expires_at: datetime,
    ) -> None:
        """The password was right. The aggregate still refuses a locked or disabled account."""
        self.check_can_log_in(at)
        self._login_succeeded(at, ip, user_agent, session_id, token_id, session_expires_at)

    def check_can_log_in(self, at: datetime) -> None:
        if self.is_locked(at):
            raise AccountLocked("the account is locked; try again later")
        if not self.is_active:
            raise AccountDisabled("the account is disabled")

    @event("LoginSucceeded")
    def _login_succeeded(
        self,
        at: datetime,
        ip: str,
        user_agent: str,
        session_id: str,
        token_id: str,
        session_expires_at: datetime,
    ) -> None:
        self.failed_logins = 0
        self.locked_until = None
        self._prune_sessions(at)
        self.sessions[session_id] = {"jti": token_id, "expires_at": session_expires_at}

    def login_failed(
        self, at: datetime, ip: str, user_agent: str, reason: str, lockout: timedelta
    ) -> bool:
        """Record a failed attempt; return True when this attempt locked the account.

        Attempts while locked are recorded but do not count; the fifth consecutive counted
        failure locks the account for ``lockout`` and starts a fresh count.
        """
        counts = reason == "bad_password" and not self.is_locked(at)
        failures = self.failed_logins + 1 if counts else self.failed_logins
        locked_until = None
        if counts and failures >= MAX_FAILED_LOGINS:
            locked_until = at + lockout
        self._login_failed(at, ip, user_agent, reason, failures, locked_until)
        return locked_until is not None

    @event("LoginFailed")
    def _login_failed(
        self,
        at: datetime,
        ip: str,
        user_agent: str,
        reason: str,
        failures: int,
        locked_until: datetime | None,
    ) -> None:
        if locked_until is not None:
            self.locked_until = locked_until
            self.failed_logins = 0
        else:
            self.failed_logins = failures

    @event("PasswordRehashed")
    def rehash_password(self, password_hash: str) -> None:
        """Stronger hashing parameters were adopted; the hash was upgraded at login."""
        self.password_hash = password_hash

    # --- password change and reset -------------------------------------------------------
    def change_password(self, password_hash: str, keep_session: str | None) -> None:
        """A new password; every session but ``keep_session`` (the caller's) ends at once."""
        if not self.is_active:
            raise AccountDisabled("the account is disabled")
        self._password_changed(password_hash, keep_session, "change")

    def issue_password_reset(self, token_hash: str, expires_at: datetime) -> None:
        if not self.is_active:
            raise AccountDisabled("the account is disabled")
        self._password_reset_issued(token_hash, expires_at)

    @event("PasswordResetIssued")
    def _password_reset_issued(self, token_hash: str, expires_at: datetime) -> None:
        self.password_reset = {"token_hash": token_hash, "expires_at": expires_at}

    def reset_password(self, token_hash: str, password_hash: str, at: datetime) -> None:
        """The one-time token from the reset mail: a new password, every session ended, and
        the lockout lifted (the owner proved they read the account's mail)."""
        pending = getattr(self, "password_reset", None)
        if (
            pending is None
            or not self.is_active
            or not hmac.compare_digest(pending["token_hash"], token_hash)
            or at >= pending["expires_at"]
        ):
            raise InvalidToken("the password reset token is unknown, used or expired")
        self._password_changed(password_hash, None, "reset")

    @event("PasswordChanged")
    def _password_changed(self, password_hash: str, keep_session: str | None, how: str) -> None:
        self.password_hash = password_hash
        self.password_reset = None
        self.sessions = {sid: s for sid, s in self.sessions.items() if sid == keep_session}
        if how == "reset":
            self.failed_logins = 0
            self.locked_until = None

    # --- sessions (refresh-token families) ----------------------------------------------
    def rotate_session(
        self,
        session_id: str,
        presented_token_id: str,
        new_token_id: str,
        at: datetime,
        expires_at: datetime,
    ) -> bool:
        """Rotate a refresh token. Returns False when an old token was replayed: the whole
        session (family) is then revoked and the caller must answer 401."""
        if not self.is_active:
            raise AccountDisabled("the account is disabled")
        if not self.session_valid(session_id, at):
            raise SessionInvalid("the refresh token is expired or revoked")
        if not hmac.compare_digest(self.sessions[session_id]["jti"], presented_token_id):
            self._session_revoked(session_id, "reuse")
            return False
        self._session_rotated(session_id, new_token_id, expires_at)
        return True

    @event("SessionRotated")
    def _session_rotated(self, session_id: str, token_id: str, expires_at: datetime) -> None:
        self.sessions[session_id] = {"jti": token_id, "expires_at": expires_at}

    def revoke_session(self, session_id: str, reason: str = "logout") -> None:
        if session_id in self.sessions:
            self._session_revoked(session_id, reason)

    @event("SessionRevoked")
    def _session_revoked(self, session_id: str, reason: str) -> None:
        self.sessions.pop(session_id, None)

    def _prune_sessions(self, at: datetime) -> None:
        for sid in [s for s, v in self.sessions.items() if v["expires_at"] <= at]:
            del self.sessions[sid]

    # --- profile and addresses ---------------------------------------------------------
    def update_profile(self, display_name: str | None, phone: str | None) -> None:
        new_name = self.display_name if display_name is None else display_name
        new_phone = self.phone if phone is None else (phone or None)
        if (new_name, new_phone) != (self.display_name, self.phone):
            self._profile_updated(new_name, new_phone)

    @event("ProfileUpdated")
    def _profile_updated(self, display_name: str, phone: str | None) -> None:
        self.display_name = display_name
        self.phone = phone

    def add_address(self, address_id: str, address: dict[str, Any]) -> None:
        if len(self.addresses) >= MAX_ADDRESSES:
            raise Conflict(f"at most {MAX_ADDRESSES} saved addresses", limit=MAX_ADDRESSES)
        self._address_added(address_id, address)

    @event("AddressAdded")
    def _address_added(self, address_id: str, address: dict[str, Any]) -> None:
        self.addresses[address_id] = dict(address)

    def remove_address(self, address_id: str) -> None:
        if address_id not in self.addresses:
            raise AddressNotFound("address not found", addressId=address_id)
        self._address_removed(address_id)

    @event("AddressRemoved")
    def _address_removed(self, address_id: str) -> None:
        self.addresses.pop(address_id, None)

    # --- roles and status --------------------------------------------------------------
    def apply_for_seller(self, shop_name: str, description: str, at: datetime) -> None:
        if self.role != "buyer":
            raise Conflict(f"a {self.role} cannot apply to become a seller")
        if self.seller_application and self.seller_application["status"] == "pending":
            raise Conflict("a seller application is already pending")
        self._seller_applied(shop_name, description, at)

    @event("SellerApplied")
    def _seller_applied(self, shop_name: str, description: str, at: datetime) -> None:
        self.seller_application = {
            "shop_name": shop_name,
            "description": description,
            "status": "pending",
            "applied_at": at,
        }

    def approve_seller(self) -> None:
        if not self.seller_application or self.seller_application["status"] != "pending":
            raise Conflict("there is no pending seller application")
        if not self.is_active:
            raise Conflict("the account is disabled")
        self._seller_approved(self.seller_application["shop_name"])

    @event("SellerApproved")
    def _seller_approved(self, shop_name: str) -> None:
        assert self.seller_application is not None
        self.seller_application = {**self.seller_application, "status": "approved"}
        self.role = "seller"

    def reject_seller(self, reason: str, at: datetime) -> None:
        """Refuse a pending application; the applicant may apply again."""
        if not self.seller_application or self.seller_application["status"] != "pending":
            raise Conflict("there is no pending seller application")
        self._seller_rejected(reason, at)

    @event("SellerRejected")
    def _seller_rejected(self, reason: str, at: datetime) -> None:
        assert self.seller_application is not None
        self.seller_application = {
            **self.seller_application,
            "status": "rejected",
            "rejection_reason": reason,
            "decided_at": at,
        }

    def change_role(self, role: str) -> None:
        if role not in ROLES:
            raise DomainError(f"role must be one of {', '.join(ROLES)}")
        if role != self.role:
            self._role_changed(role)

    @event("RoleChanged")
    def _role_changed(self, role: str) -> None:
        self.role = role

    def disable(self, reason: str) -> None:
        if self.status != "disabled":
            self._disabled(reason)

    @event("Disabled")
    def _disabled(self, reason: str) -> None:
        self.status = "disabled"
        self.sessions = {}

    def enable(self) -> None:
        if self.deleted:
            raise Conflict("a deleted account cannot be re-enabled")
        if self.status != "active":
            self._enabled()

    @event("Enabled")
    def _enabled(self) -> None:
        self.status = "active"

    def delete(self) -> None:
        """Deleting keeps the history: the account is disabled for good."""
        if not self.deleted:
            self._deleted()

    @event("Deleted")
    def _deleted(self) -> None:
        self.status = "disabled"
        self.deleted = True
        self.sessions = {}

    # --- buyer reports against this seller --------------------------------------------
    def report(self, reporter_id: str, reason: str, at: datetime) -> bool:
        """Record a buyer's report; returns True when it suspended listing rights."""
        if self.role != "seller":
            raise AccountNotFound("seller not found")
        if reporter_id == str(self.id):
            raise Conflict("you cannot report yourself")
        if reporter_id in self.reporters:
            raise Conflict("you have already reported this seller")
        self._reported(reporter_id, reason, at)
        if not self.listing_suspended and len(self.reporters) > REPORT_THRESHOLD:
            self._listing_suspended(len(self.reporters))
            return True
        return False

    @event("Reported")
    def _reported(self, reporter_id: str, reason: str, at: datetime) -> None:
        self.reporters = [*self.reporters, reporter_id]

    @event("ListingRightsSuspended")
    def _listing_suspended(self, distinct_reporters: int) -> None:
        self.listing_suspended = True

    def restore_listing_rights(self) -> None:
        if not self.listing_suspended:
            raise Conflict("listing rights are not suspended")
        self._listing_restored()

    @event("ListingRightsRestored")
    def _listing_restored(self) -> None:
        self.listing_suspended = False
        self.reporters = []  # counting starts afresh
