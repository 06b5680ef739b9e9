"""Accounts read model: user list and profiles, saved addresses, login history, seller reports.

Never holds a password hash or a token: the handlers copy only what screens show.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    update,
)
from sqlalchemy.orm import Session

from aggregates.accounts import Account
from projections.base import ADDED, Envelope, Projection, handles, naive_utc


class Accounts(Projection):
    name = "accounts"

    @classmethod
    def define_tables(cls, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        accounts = Table(
            f"rm_accounts{suffix}",
            metadata,
            Column("user_id", String(36), primary_key=True),
            Column("email", String(320), nullable=False, index=True),
            Column("username", String(30), nullable=False),
            Column("username_key", String(30), nullable=False, index=True),
            Column("display_name", String(100), nullable=False),
            Column("phone", String(30)),
            Column("role", String(10), nullable=False, index=True),
            Column("status", String(10), nullable=False, index=True),
            Column("deleted", Boolean, nullable=False, default=False),
            Column("email_verified", Boolean, nullable=False),
            Column("created_at", DateTime, nullable=False, index=True),
            Column("updated_at", DateTime, nullable=False),
            Column("last_login_at", DateTime),
            Column("seller_status", String(10), index=True),
            Column("shop_name", String(100)),
            Column("shop_description", Text),
            Column("seller_applied_at", DateTime),
            # Why an admin refused the application (added later: no earlier event sets it).
            Column("seller_rejection_reason", Text, info=ADDED),
            Column("listing_suspended", Boolean, nullable=False, default=False),
            Column("report_count", Integer, nullable=False, default=0),
        )
        addresses = Table(
            f"rm_account_addresses{suffix}",
            metadata,
            Column("address_id", String(36), primary_key=True),
            Column("user_id", String(36), nullable=False, index=True),
            Column("position", BigInteger, nullable=False),
            Column("label", String(50)),
            Column("name", String(100), nullable=False),
            Column("phone", String(30), nullable=False),
            Column("street", String(200), nullable=False),
            Column("city", String(100), nullable=False),
            Column("district", String(100), nullable=False),
            Column("postal_code", String(20), nullable=False),
            Column("country", String(100), nullable=False),
            Column("is_default", Boolean, nullable=False, default=False),
            Column("created_at", DateTime, nullable=False),
        )
        logins = Table(
            f"rm_login_history{suffix}",
            metadata,
            Column("position", BigInteger, primary_key=True, autoincrement=False),
            Column("user_id", String(36), nullable=False),
            Column("at", DateTime, nullable=False),
            Column("success", Boolean, nullable=False),
            Column("ip", String(64), nullable=False),
            Column("user_agent", String(300), nullable=False),
            Column("reason", String(20)),
        )
        Index(None, logins.c.user_id, logins.c.position)
        reports = Table(
            f"rm_seller_reports{suffix}",
            metadata,
            Column("position", BigInteger, primary_key=True, autoincrement=False),
            Column("seller_id", String(36), nullable=False, index=True),
            Column("reporter_id", String(36), nullable=False),
            Column("reason", Text, nullable=False),
            Column("at", DateTime, nullable=False),
        )
        return {"accounts": accounts, "addresses": addresses, "logins": logins, "reports": reports}

    def __init__(self, tables: dict[str, Table]) -> None:
        super().__init__(tables)
        a = self.tables["accounts"]
        self._acc = a
        self._insert_login = insert(self.tables["logins"])

    def _set(self, session: Session, env: Envelope, **values: Any) -> None:
        a = self._acc
        session.execute(
            update(a)
            .where(a.c.user_id == str(env.originator_id))
            .values(updated_at=naive_utc(env.event.timestamp), **values)
        )

    @handles(Account.Registered)
    def _registered(self, session: Session, env: Envelope) -> None:
        e = env.event
        at = naive_utc(e.timestamp)
        session.execute(
            insert(self._acc).values(
                user_id=str(env.originator_id),
                email=e.email,
                username=e.username,
                username_key=e.username.lower(),
                display_name=e.display_name,
                phone=e.phone,
                role=e.role,
                status="active",
                deleted=False,
                email_verified=bool(e.email_verified),
                created_at=at,
                updated_at=at,
                listing_suspended=False,
                report_count=0,
            )
        )

    @handles(Account.EmailVerified)
    def _verified(self, session: Session, env: Envelope) -> None:
        self._set(session, env, email_verified=True)

    @handles(Account.LoginSucceeded, Account.LoginFailed)
    def _login(self, session: Session, env: Envelope) -> None:
        e = env.event
        success = isinstance(e, Account.LoginSucceeded)
        session.execute(
            self._insert_login,
            {
                "position": env.position,
                "user_id": str(env.originator_id),
                "at": naive_utc(e.at),
                "success": success,
                "ip": e.ip[:64],
                "user_agent": e.user_agent[:300],
                "reason": None if success else e.reason,
            },
        )
        if success:
            a = self._acc
            session.execute(
                update(a)
                .where(a.c.user_id == str(env.originator_id))
                .values(last_login_at=naive_utc(e.at))
            )

    @handles(Account.ProfileUpdated)
    def _profile(self, session: Session, env: Envelope) -> None:
        self._set(session, env, display_name=env.event.display_name, phone=env.event.phone)

    @handles(Account.AddressAdded)
    def _address_added(self, session: Session, env: Envelope) -> None:
        addr = env.event.address
        session.execute(
            insert(self.tables["addresses"]).values(
                address_id=env.event.address_id,
                user_id=str(env.originator_id),
                position=env.position,
                label=addr.get("label"),
                name=addr["name"],
                phone=addr["phone"],
                street=addr["street"],
                city=addr["city"],
                district=addr["district"],
                postal_code=addr["postalCode"],
                country=addr["country"],
                is_default=bool(addr.get("isDefault")),
                created_at=naive_utc(env.event.timestamp),
            )
        )

    @handles(Account.AddressRemoved)
    def _address_removed(self, session: Session, env: Envelope) -> None:
        t = self.tables["addresses"]
        session.execute(delete(t).where(t.c.address_id == env.event.address_id))

    @handles(Account.SellerApplied)
    def _applied(self, session: Session, env: Envelope) -> None:
        e = env.event
        self._set(
            session,
            env,
            seller_status="pending",
            shop_name=e.shop_name,
            shop_description=e.description,
            seller_applied_at=naive_utc(e.at),
            seller_rejection_reason=None,
        )

    @handles(Account.SellerApproved)
    def _approved(self, session: Session, env: Envelope) -> None:
        self._set(session, env, seller_status="approved", role="seller")

    @handles(Account.SellerRejected)
    def _rejected(self, session: Session, env: Envelope) -> None:
        self._set(session, env, seller_status="rejected", seller_rejection_reason=env.event.reason)

    @handles(Account.RoleChanged)
    def _role(self, session: Session, env: Envelope) -> None:
        self._set(session, env, role=env.event.role)

    @handles(Account.Disabled)
    def _disabled(self, session: Session, env: Envelope) -> None:
        self._set(session, env, status="disabled")

    @handles(Account.Enabled)
    def _enabled(self, session: Session, env: Envelope) -> None:
        self._set(session, env, status="active")

    @handles(Account.Deleted)
    def _deleted(self, session: Session, env: Envelope) -> None:
        self._set(session, env, status="disabled", deleted=True)

    @handles(Account.Reported)
    def _reported(self, session: Session, env: Envelope) -> None:
        e = env.event
        session.execute(
            insert(self.tables["reports"]).values(
                position=env.position,
                seller_id=str(env.originator_id),
                reporter_id=e.reporter_id,
                reason=e.reason,
                at=naive_utc(e.at),
            )
        )
        a = self._acc
        session.execute(
            update(a)
            .where(a.c.user_id == str(env.originator_id))
            .values(report_count=a.c.report_count + 1)
        )

    @handles(Account.ListingRightsSuspended)
    def _suspended(self, session: Session, env: Envelope) -> None:
        self._set(session, env, listing_suspended=True)

    @handles(Account.ListingRightsRestored)
    def _restored(self, session: Session, env: Envelope) -> None:
        self._set(session, env, listing_suspended=False, report_count=0)


live = Accounts.live_tables()
