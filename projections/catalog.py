"""Catalog read model: category tree, product listings with search terms, seller visibility,
price history and price intervals (for category trends and comparisons).

A product is *listed* (appears in search) when its status is active and its seller is active
with listing rights. Handlers depend on the events alone, so a rebuild gives the same rows.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Session

from aggregates.accounts import Account
from aggregates.catalog import BannedKeywords, Category, Product
from aggregates.money import to_minor
from aggregates.orders import Order
from projections.base import (
    Envelope,
    LongText,
    Projection,
    Timestamp,
    handles,
    naive_utc,
    new_metadata,
)
from projections.search_text import document_terms

#: valid_to of a price interval still in effect (a value, not NULL, so "ends after" is one
#: index range on (category_id, valid_to)).
OPEN_END = datetime(9999, 12, 31)
# Terms compare byte for byte: under MySQL's default collations distinct terms (e.g. "é" and
# "e") would collide in the primary key.
TermString = String(64).with_variant(mysql.VARCHAR(64, collation="utf8mb4_bin"), "mysql", "mariadb")


class Catalog(Projection):
    name = "catalog"

    @classmethod
    def define_tables(cls, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        categories = Table(
            f"rm_categories{suffix}",
            metadata,
            Column("category_id", String(36), primary_key=True),
            Column("name", String(100), nullable=False),
            Column("parent_id", String(36), index=True),
            # "/<root id>/.../<own id>/": descendants are the rows whose lineage starts with it.
            Column("lineage", LongText, nullable=False),
            Column("depth", Integer, nullable=False),
            Column("position", BigInteger, nullable=False),
            Column("created_at", Timestamp, nullable=False),
        )
        products = Table(
            f"rm_products{suffix}",
            metadata,
            Column("product_id", String(36), primary_key=True),
            Column("seller_id", String(36), nullable=False, index=True),
            Column("name", String(100), nullable=False),
            Column("description", Text, nullable=False),
            Column("category_id", String(36), nullable=False, index=True),
            Column("price_minor", BigInteger, nullable=False),
            Column("images", LongText, nullable=False),
            Column("supplier_ids", LongText, nullable=False),
            Column("status", String(10), nullable=False),
            Column("seller_visible", Boolean, nullable=False),
            Column("listed", Boolean, nullable=False),
            Column("units_sold", BigInteger, nullable=False, default=0),
            Column("created_at", Timestamp, nullable=False),
            Column("updated_at", Timestamp, nullable=False),
            Column("version", Integer, nullable=False),
        )
        # Each sort's full ORDER BY, so a page is an index walk that stops early.
        Index(None, products.c.listed, products.c.created_at, products.c.product_id)
        Index(None, products.c.listed, products.c.price_minor, products.c.product_id)
        Index(
            None,
            products.c.listed,
            products.c.units_sold,
            products.c.created_at,
            products.c.product_id,
        )
        product_terms = Table(
            f"rm_product_terms{suffix}",
            metadata,
            Column("term", TermString, primary_key=True),
            Column("product_id", String(36), primary_key=True),
            Column("weight", Integer, nullable=False),
            # SQLite: rows live in the primary-key b-tree, so a term's postings (with their
            # weights) are one index range, no second lookup per row.
            sqlite_with_rowid=False,
        )
        Index(None, product_terms.c.product_id)
        sellers = Table(
            f"rm_catalog_sellers{suffix}",
            metadata,
            Column("seller_id", String(36), primary_key=True),
            Column("shop_name", String(100)),
            Column("role", String(10), nullable=False),
            Column("active", Boolean, nullable=False),
            Column("listing_suspended", Boolean, nullable=False),
        )
        prices = Table(
            f"rm_price_history{suffix}",
            metadata,
            Column("position", BigInteger, primary_key=True, autoincrement=False),
            Column("product_id", String(36), nullable=False),
            Column("at", Timestamp, nullable=False),
            Column("price_minor", BigInteger, nullable=False),
            Column("previous_minor", BigInteger),
            Column("actor", String(64)),
        )
        Index(None, prices.c.product_id, prices.c.at)
        intervals = Table(
            f"rm_price_intervals{suffix}",
            metadata,
            Column("position", BigInteger, primary_key=True, autoincrement=False),
            Column("product_id", String(36), nullable=False),
            Column("category_id", String(36), nullable=False),
            Column("price_minor", BigInteger, nullable=False),
            Column("valid_from", Timestamp, nullable=False),
            Column("valid_to", Timestamp, nullable=False),
        )
        Index(None, intervals.c.category_id, intervals.c.valid_to)
        Index(None, intervals.c.product_id, intervals.c.valid_to)
        order_units = Table(
            f"rm_catalog_order_units{suffix}",
            metadata,
            Column("order_id", String(36), primary_key=True),
            Column("product_units", Text, nullable=False),  # {product id: units}
            Column("paid", Boolean, nullable=False),
        )
        settings = Table(
            f"rm_catalog_settings{suffix}",
            metadata,
            Column("key", String(50), primary_key=True),
            Column("value", LongText, nullable=False),
        )
        return {
            "order_units": order_units,
            "settings": settings,
            "categories": categories,
            "products": products,
            "terms": product_terms,
            "sellers": sellers,
            "prices": prices,
            "intervals": intervals,
        }

    # --- helpers -------------------------------------------------------------------------
    def _product(self, session: Session, product_id: str) -> Any:
        p = self.tables["products"]
        return session.execute(select(p).where(p.c.product_id == product_id)).one()

    def _update_product(self, session: Session, env: Envelope, **values: Any) -> None:
        p = self.tables["products"]
        session.execute(
            update(p)
            .where(p.c.product_id == str(env.originator_id))
            .values(updated_at=naive_utc(env.event.at), version=env.originator_version, **values)
        )

    def _index_terms(self, session: Session, product_id: str, name: str, description: str) -> None:
        t = self.tables["terms"]
        session.execute(delete(t).where(t.c.product_id == product_id))
        rows = [
            {"term": term, "product_id": product_id, "weight": weight}
            for term, weight in document_terms(name, description).items()
        ]
        if rows:
            session.execute(insert(t), rows)

    def _seller_visible(self, session: Session, seller_id: str) -> bool:
        s = self.tables["sellers"]
        row = session.execute(select(s).where(s.c.seller_id == seller_id)).first()
        return row is not None and _visible(row)

    def _open_interval(
        self,
        session: Session,
        env: Envelope,
        product_id: str,
        category_id: str,
        price_minor: int,
        at: datetime,
    ) -> None:
        session.execute(
            insert(self.tables["intervals"]).values(
                position=env.position,
                product_id=product_id,
                category_id=category_id,
                price_minor=price_minor,
                valid_from=naive_utc(at),
                valid_to=OPEN_END,
            )
        )

    def _close_interval(self, session: Session, product_id: str, at: datetime) -> None:
        i = self.tables["intervals"]
        session.execute(
            update(i)
            .where(i.c.product_id == product_id, i.c.valid_to == OPEN_END)
            .values(valid_to=naive_utc(at))
        )

    def _set_status(self, session: Session, env: Envelope, status: str) -> None:
        row = self._product(session, str(env.originator_id))
        was_active = row.status == "active"
        self._update_product(
            session, env, status=status, listed=status == "active" and row.seller_visible
        )
        at = env.event.at
        if was_active and status != "active":
            self._close_interval(session, row.product_id, at)
        elif status == "active" and not was_active:
            self._open_interval(session, env, row.product_id, row.category_id, row.price_minor, at)

    # --- categories ----------------------------------------------------------------------
    @handles(Category.Created)
    def _category_created(self, session: Session, env: Envelope) -> None:
        e = env.event
        own = str(env.originator_id)
        session.execute(
            insert(self.tables["categories"]).values(
                category_id=own,
                name=e.name,
                parent_id=e.parent_id,
                lineage="/" + "".join(f"{c}/" for c in [*e.path, own]),
                depth=len(e.path),
                position=env.position,
                created_at=naive_utc(e.timestamp),
            )
        )

    @handles(BannedKeywords.Defined, BannedKeywords.Replaced)
    def _banned_keywords(self, session: Session, env: Envelope) -> None:
        t = self.tables["settings"]
        value = json.dumps(env.event.keywords, ensure_ascii=False)
        session.execute(delete(t).where(t.c.key == "banned_keywords"))
        session.execute(insert(t).values(key="banned_keywords", value=value))

    # --- products ------------------------------------------------------------------------
    @handles(Product.Listed)
    def _listed(self, session: Session, env: Envelope) -> None:
        e = env.event
        product_id = str(env.originator_id)
        at = naive_utc(e.at)
        visible = self._seller_visible(session, e.seller_id)
        price = to_minor(e.price)
        session.execute(
            insert(self.tables["products"]).values(
                product_id=product_id,
                seller_id=e.seller_id,
                name=e.name,
                description=e.description,
                category_id=e.category_id,
                price_minor=price,
                images=json.dumps(e.images, ensure_ascii=False),
                supplier_ids=json.dumps(e.supplier_ids, ensure_ascii=False),
                status="active",
                seller_visible=visible,
                listed=visible,
                units_sold=0,
                created_at=at,
                updated_at=at,
                version=env.originator_version,
            )
        )
        self._index_terms(session, product_id, e.name, e.description)
        session.execute(
            insert(self.tables["prices"]).values(
                position=env.position,
                product_id=product_id,
                at=at,
                price_minor=price,
                previous_minor=None,
                actor=env.actor,
            )
        )
        self._open_interval(session, env, product_id, e.category_id, price, e.at)

    @handles(Product.Edited)
    def _edited(self, session: Session, env: Envelope) -> None:
        changes = env.event.changes
        product_id = str(env.originator_id)
        row = self._product(session, product_id)
        values: dict[str, Any] = {}
        for key in ("name", "description", "category_id"):
            if key in changes:
                values[key] = changes[key]
        if "images" in changes:
            values["images"] = json.dumps(changes["images"], ensure_ascii=False)
        if "supplier_ids" in changes:
            values["supplier_ids"] = json.dumps(changes["supplier_ids"], ensure_ascii=False)
        self._update_product(session, env, **values)
        if "name" in changes or "description" in changes:
            self._index_terms(
                session,
                product_id,
                changes.get("name", row.name),
                changes.get("description", row.description),
            )
        if "category_id" in changes and row.status == "active":
            self._close_interval(session, product_id, env.event.at)
            self._open_interval(
                session, env, product_id, changes["category_id"], row.price_minor, env.event.at
            )

    @handles(Product.PriceChanged)
    def _price_changed(self, session: Session, env: Envelope) -> None:
        e = env.event
        product_id = str(env.originator_id)
        row = self._product(session, product_id)
        price = to_minor(e.price)
        self._update_product(session, env, price_minor=price)
        session.execute(
            insert(self.tables["prices"]).values(
                position=env.position,
                product_id=product_id,
                at=naive_utc(e.at),
                price_minor=price,
                previous_minor=to_minor(e.previous),
                actor=env.actor,
            )
        )
        if row.status == "active":
            self._close_interval(session, product_id, e.at)
            self._open_interval(session, env, product_id, row.category_id, price, e.at)

    @handles(Product.Delisted)
    def _delisted(self, session: Session, env: Envelope) -> None:
        self._set_status(session, env, "delisted")

    @handles(Product.Relisted)
    def _relisted(self, session: Session, env: Envelope) -> None:
        self._set_status(session, env, "active")

    @handles(Product.Suspended)
    def _suspended(self, session: Session, env: Envelope) -> None:
        self._set_status(session, env, "suspended")

    @handles(Product.Reinstated)
    def _reinstated(self, session: Session, env: Envelope) -> None:
        self._set_status(session, env, env.event.status)

    # --- units sold (the bestselling sort): counted when paid, taken back if cancelled ---
    @handles(Order.Placed)
    def _order_placed(self, session: Session, env: Envelope) -> None:
        units: dict[str, int] = {}
        for item in env.event.items:
            units[item["productId"]] = units.get(item["productId"], 0) + item["quantity"]
        session.execute(
            insert(self.tables["order_units"]).values(
                order_id=str(env.originator_id),
                product_units=json.dumps(units),
                paid=False,
            )
        )

    def _count_units(self, session: Session, env: Envelope, paid: bool) -> None:
        o = self.tables["order_units"]
        row = session.execute(select(o).where(o.c.order_id == str(env.originator_id))).one()
        if row.paid == paid:
            return
        sign = 1 if paid else -1
        p = self.tables["products"]
        units = json.loads(row.product_units)
        for product_id, n in units.items():
            if n:
                session.execute(
                    update(p)
                    .where(p.c.product_id == product_id)
                    .values(units_sold=p.c.units_sold + sign * n)
                )
        if not paid:  # cancelled: nothing of it counts any more
            units = {k: 0 for k in units}
        session.execute(
            update(o)
            .where(o.c.order_id == row.order_id)
            .values(paid=paid, product_units=json.dumps(units))
        )

    @handles(Order.StatusChanged)
    def _order_status(self, session: Session, env: Envelope) -> None:
        if env.event.status == "PAID":  # orders recorded before payments were events
            self._count_units(session, env, True)

    @handles(Order.PaymentCompleted)
    def _order_paid(self, session: Session, env: Envelope) -> None:
        if env.event.status != "CANCELLED":
            self._count_units(session, env, True)

    @handles(Order.Refunded)
    def _order_refunded(self, session: Session, env: Envelope) -> None:
        """Units refunded by item no longer count as sold."""
        o = self.tables["order_units"]
        row = session.execute(select(o).where(o.c.order_id == str(env.originator_id))).one()
        if not row.paid or not env.event.items:
            return
        units = json.loads(row.product_units)
        p = self.tables["products"]
        for item in env.event.items:
            taken = min(int(item["quantity"]), units.get(item["productId"], 0))
            if taken:
                units[item["productId"]] -= taken
                session.execute(
                    update(p)
                    .where(p.c.product_id == item["productId"])
                    .values(units_sold=p.c.units_sold - taken)
                )
        session.execute(
            update(o).where(o.c.order_id == row.order_id).values(product_units=json.dumps(units))
        )

    @handles(Order.Cancelled)
    def _order_cancelled(self, session: Session, env: Envelope) -> None:
        self._count_units(session, env, False)

    # --- sellers (visibility of their products) ------------------------------------------
    def _seller_changed(self, session: Session, seller_id: str, **values: Any) -> None:
        s = self.tables["sellers"]
        row = session.execute(select(s).where(s.c.seller_id == seller_id)).first()
        if row is None:
            if values.get("role") != "seller":
                return  # not a seller: nothing of theirs is listed
            session.execute(
                insert(s).values(
                    seller_id=seller_id,
                    shop_name=values.get("shop_name"),
                    role="seller",
                    active=True,
                    listing_suspended=False,
                )
            )
        else:
            session.execute(update(s).where(s.c.seller_id == seller_id).values(**values))
        row = session.execute(select(s).where(s.c.seller_id == seller_id)).one()
        visible = _visible(row)
        p = self.tables["products"]
        session.execute(
            update(p)
            .where(p.c.seller_id == seller_id)
            .values(seller_visible=visible, listed=(p.c.status == "active") if visible else False)
        )

    @handles(Account.Registered)
    def _registered(self, session: Session, env: Envelope) -> None:
        if env.event.role == "seller":
            self._seller_changed(
                session, str(env.originator_id), role="seller", shop_name=env.event.display_name
            )

    @handles(Account.SellerApproved)
    def _seller_approved(self, session: Session, env: Envelope) -> None:
        self._seller_changed(
            session, str(env.originator_id), role="seller", shop_name=env.event.shop_name
        )

    @handles(Account.RoleChanged)
    def _role_changed(self, session: Session, env: Envelope) -> None:
        self._seller_changed(session, str(env.originator_id), role=env.event.role)

    @handles(Account.Disabled, Account.Deleted)
    def _disabled(self, session: Session, env: Envelope) -> None:
        self._seller_changed(session, str(env.originator_id), active=False)

    @handles(Account.Enabled)
    def _enabled(self, session: Session, env: Envelope) -> None:
        self._seller_changed(session, str(env.originator_id), active=True)

    @handles(Account.ListingRightsSuspended)
    def _rights_suspended(self, session: Session, env: Envelope) -> None:
        self._seller_changed(session, str(env.originator_id), listing_suspended=True)

    @handles(Account.ListingRightsRestored)
    def _rights_restored(self, session: Session, env: Envelope) -> None:
        self._seller_changed(session, str(env.originator_id), listing_suspended=False)


def _visible(row: Any) -> bool:
    return bool(row.role == "seller" and row.active and not row.listing_suspended)


live = Catalog.define_tables(new_metadata())
