"""Catalog read model: category tree, product listings with search terms, seller visibility,
price history and price intervals (for category trends and comparisons).

A product is *listed* (appears in search) when its status is active and its seller is active
with listing rights. Handlers depend on the events alone, so a rebuild gives the same rows.
"""

from __future__ import annotations

import json
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from eventsourcing.utils import get_topic
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
    and_,
    delete,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Session

from aggregates.accounts import Account
from aggregates.catalog import BannedKeywords, Category, Product
from aggregates.money import to_minor
from aggregates.orders import Order
from aggregates.reviews import Review
from projections.base import (
    ADDED,
    Envelope,
    LongText,
    Projection,
    Timestamp,
    handles,
    naive_utc,
)
from projections.bulk import IN_CHUNK, insert_many, insert_tuples, load
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
            Column("category_id", String(36), nullable=False),
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
            # Product reviews (added after the first release: startup adds these columns to
            # an existing table, whose products had no reviews before).
            Column("rating_sum", BigInteger, nullable=False, server_default="0", info=ADDED),
            Column("review_count", Integer, nullable=False, server_default="0", info=ADDED),
            # The average product score x 10, rounded half up; NULL: no visible review.
            Column("rating_x10", Integer, info=ADDED),
            # Moderation (SHOPLEDGER_PRODUCT_REVIEW; products listed before were live at once).
            Column("live", Boolean, nullable=False, server_default="1", info=ADDED),
            Column(
                "review_status", String(10), nullable=False, server_default="approved", info=ADDED
            ),
            Column("review_reason", Text, info=ADDED),
            Column("pending_changes", LongText, info=ADDED),  # JSON: an edit waiting
            Column("submitted_at", Timestamp, info=ADDED),
        )
        # The admin's review queue, oldest submission first.
        Index(None, products.c.review_status, products.c.submitted_at, products.c.product_id)
        # A category's count and its price-sorted page, from the index alone.
        Index(
            None,
            products.c.category_id,
            products.c.listed,
            products.c.price_minor,
            products.c.product_id,
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
        # sort=rating: best rated first, ties by number of reviews (unrated last).
        Index(
            None,
            products.c.listed,
            products.c.rating_x10,
            products.c.review_count,
            products.c.created_at,
            products.c.product_id,
        )
        review_scores = Table(
            f"rm_catalog_review_scores{suffix}",
            metadata,
            Column("review_id", String(36), primary_key=True),
            Column("product_id", String(36), nullable=False),
            Column("score", Integer, nullable=False),
            Column("visible", Boolean, nullable=False),
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
        # Sale windows (aggregates/promotions.py). ``until``: when the sale stops applying
        # (its end, or its cancellation); queries compare it with their own clock, so a window
        # begins and ends with no event at its boundaries.
        sales = Table(
            f"rm_sale_prices{suffix}",
            metadata,
            Column("sale_id", String(36), primary_key=True),
            Column("product_id", String(36), nullable=False),
            Column("price_minor", BigInteger, nullable=False),
            Column("starts_at", Timestamp, nullable=False),
            Column("ends_at", Timestamp, nullable=False),
            Column("until", Timestamp, nullable=False),
            Column("cancelled_at", Timestamp),
            Column("created_at", Timestamp, nullable=False),
            Column("created_by", String(64)),
            Column("cancelled_by", String(64)),
            Column("position", BigInteger, nullable=False),
        )
        Index(None, sales.c.product_id, sales.c.starts_at)
        # "Is any sale in force now?": the windows not over yet, one index range.
        Index(None, sales.c.until, sales.c.starts_at)
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
            "review_scores": review_scores,
            "sales": sales,
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

    def _index_terms(
        self, session: Session, product_id: str, name: str, description: str, old: Any = None
    ) -> None:
        """(Re)write a product's postings; ``old`` (its row) names the postings to replace, by
        primary key: the table has no index by product, which would cost every new listing
        a second b-tree insert per term. Changing how terms are cut (search_text) therefore
        needs a rebuild of the catalog, as it does anyway for the products not edited."""
        t = self.tables["terms"]
        if old is not None:
            stale = list(document_terms(old.name, old.description))
            for start in range(0, len(stale), IN_CHUNK):
                session.execute(
                    delete(t).where(
                        t.c.product_id == product_id, t.c.term.in_(stale[start : start + IN_CHUNK])
                    )
                )
        insert_tuples(session, t, _term_rows(product_id, name, description))

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
                _interval_row(env, product_id, category_id, price_minor, naive_utc(at))
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
        # A product never approved is on sale in no status: it has no price interval.
        was_active = row.status == "active" and row.live
        self._update_product(
            session,
            env,
            status=status,
            listed=status == "active" and row.live and row.seller_visible,
        )
        if not row.live:
            return
        at = env.event.at
        if was_active and status != "active":
            self._close_interval(session, row.product_id, at)
        elif status == "active" and not was_active:
            self._open_interval(session, env, row.product_id, row.category_id, row.price_minor, at)

    # --- batches -------------------------------------------------------------------------
    def apply_many(self, session: Session, envelopes: list[Envelope]) -> None:
        """New listings (and the price changes of products listed in the same batch) are
        gathered in memory and written with one ``executemany`` per table; any other event
        first writes what was gathered, then applies on its own. A catalog being built or
        rebuilt is almost all new listings: this took its catch-up from ~400 events/s, six
        statements and ~50 term rows per product one by one, to several thousand
        (bench/README.md). The rows are exactly those the one-event handlers write."""
        fresh = _NewListings(self, session)
        listed, priced = get_topic(Product.Listed), get_topic(Product.PriceChanged)
        fresh.read_sellers({env.event.seller_id for env in envelopes if env.topic == listed})
        for env in envelopes:
            if env.topic == listed:
                fresh.listed(env)
            elif env.topic == priced and fresh.holds(str(env.originator_id)):
                fresh.price_changed(env)
            else:
                fresh.write()
                self.apply(session, env)
                if env.topic.startswith(_ACCOUNT_EVENTS):
                    fresh.visible.clear()  # a seller may have changed: look again
        fresh.write()

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

    @handles(Category.Renamed)
    def _category_renamed(self, session: Session, env: Envelope) -> None:
        c = self.tables["categories"]
        session.execute(
            update(c).where(c.c.category_id == str(env.originator_id)).values(name=env.event.name)
        )

    @handles(Category.Moved)
    def _category_moved(self, session: Session, env: Envelope) -> None:
        """New ancestors (the category moved, or one of its ancestors did: each descendant
        gets its own event in the same transaction)."""
        e = env.event
        own = str(env.originator_id)
        c = self.tables["categories"]
        session.execute(
            update(c)
            .where(c.c.category_id == own)
            .values(
                parent_id=e.parent_id,
                lineage="/" + "".join(f"{x}/" for x in [*e.path, own]),
                depth=len(e.path),
            )
        )

    @handles(Category.Deleted)
    def _category_deleted(self, session: Session, env: Envelope) -> None:
        c = self.tables["categories"]
        session.execute(delete(c).where(c.c.category_id == str(env.originator_id)))

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
        row = _product_row(env, self._seller_visible(session, e.seller_id))
        product_id, price = row["product_id"], row["price_minor"]
        session.execute(insert(self.tables["products"]).values(row))
        self._index_terms(session, product_id, e.name, e.description)
        session.execute(
            insert(self.tables["prices"]).values(
                _price_row(env, product_id, row["created_at"], price, None)
            )
        )
        if row["live"]:
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
                old=row,
            )
        if "category_id" in changes and row.status == "active" and row.live:
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
                _price_row(env, product_id, naive_utc(e.at), price, to_minor(e.previous))
            )
        )
        if row.status == "active" and row.live:
            self._close_interval(session, product_id, e.at)
            self._open_interval(session, env, product_id, row.category_id, price, e.at)

    @handles(Product.SaleScheduled)
    def _sale_scheduled(self, session: Session, env: Envelope) -> None:
        e = env.event
        session.execute(
            insert(self.tables["sales"]).values(
                sale_id=e.sale_id,
                product_id=str(env.originator_id),
                price_minor=to_minor(e.price),
                starts_at=naive_utc(e.starts_at),
                ends_at=naive_utc(e.ends_at),
                until=naive_utc(e.ends_at),
                cancelled_at=None,
                created_at=naive_utc(e.at),
                created_by=env.actor,
                cancelled_by=None,
                position=env.position,
            )
        )
        self._update_product(session, env)

    @handles(Product.SaleCancelled)
    def _sale_cancelled(self, session: Session, env: Envelope) -> None:
        t = self.tables["sales"]
        row = session.execute(select(t).where(t.c.sale_id == env.event.sale_id)).one()
        at = naive_utc(env.event.at)
        session.execute(
            update(t)
            .where(t.c.sale_id == row.sale_id)
            .values(
                cancelled_at=at,
                until=min(row.ends_at, max(row.starts_at, at)),
                cancelled_by=env.actor,
            )
        )
        self._update_product(session, env)

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

    # --- moderation (SHOPLEDGER_PRODUCT_REVIEW) ------------------------------------------------
    @handles(Product.EditSubmitted)
    def _edit_submitted(self, session: Session, env: Envelope) -> None:
        e = env.event
        row = self._product(session, str(env.originator_id))
        if e.changes:
            values: dict[str, Any] = {
                "review_status": "pending",
                "submitted_at": naive_utc(e.at),
                "review_reason": None,
            }
        elif row.review_status == "pending":
            values = {"review_status": "approved", "submitted_at": None}
        else:
            values = {}
        pending = json.dumps(e.changes, ensure_ascii=False) if e.changes else None
        self._update_product(session, env, pending_changes=pending, **values)

    @handles(Product.Resubmitted)
    def _resubmitted(self, session: Session, env: Envelope) -> None:
        self._update_product(
            session,
            env,
            review_status="pending",
            submitted_at=naive_utc(env.event.at),
            review_reason=None,
        )

    @handles(Product.ReviewApproved)
    def _review_approved(self, session: Session, env: Envelope) -> None:
        """The edit's values came just before, in a Product.Edited of the same save."""
        row = self._product(session, str(env.originator_id))
        self._update_product(
            session,
            env,
            review_status="approved",
            review_reason=None,
            pending_changes=None,
            submitted_at=None,
            live=True,
            listed=row.status == "active" and row.seller_visible,
        )
        if not row.live and row.status == "active":
            self._open_interval(
                session,
                env,
                row.product_id,
                row.category_id,
                row.price_minor,
                env.event.at,
            )

    @handles(Product.ReviewRejected)
    def _review_rejected(self, session: Session, env: Envelope) -> None:
        self._update_product(
            session,
            env,
            review_status="rejected",
            review_reason=env.event.reason,
            pending_changes=None,
            submitted_at=None,
        )

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
            .values(
                seller_visible=visible,
                listed=and_(p.c.status == "active", p.c.live == true()) if visible else False,
            )
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

    # --- reviews (rating and review count on the product) -----------------------------------
    def _rate(self, session: Session, product_id: str, score: int, n: int) -> None:
        p = self.tables["products"]
        row = session.execute(
            select(p.c.rating_sum, p.c.review_count).where(p.c.product_id == product_id)
        ).first()
        if row is None:
            return
        total, count = row.rating_sum + n * score, row.review_count + n
        session.execute(
            update(p)
            .where(p.c.product_id == product_id)
            .values(rating_sum=total, review_count=count, rating_x10=rating_x10(total, count))
        )

    def _score(self, session: Session, env: Envelope) -> Any:
        r = self.tables["review_scores"]
        return session.execute(select(r).where(r.c.review_id == str(env.originator_id))).one()

    def _set_score(self, session: Session, env: Envelope, **values: Any) -> None:
        r = self.tables["review_scores"]
        session.execute(update(r).where(r.c.review_id == str(env.originator_id)).values(**values))

    @handles(Review.Written)
    def _review_written(self, session: Session, env: Envelope) -> None:
        e = env.event
        session.execute(
            insert(self.tables["review_scores"]).values(
                review_id=str(env.originator_id),
                product_id=e.product_id,
                score=e.product_score,
                visible=True,
            )
        )
        self._rate(session, e.product_id, e.product_score, 1)

    @handles(Review.Edited)
    def _review_edited(self, session: Session, env: Envelope) -> None:
        old = self._score(session, env)
        if old.visible and old.score != env.event.product_score:
            self._rate(session, old.product_id, old.score, -1)
            self._rate(session, old.product_id, env.event.product_score, 1)
        self._set_score(session, env, score=env.event.product_score)

    @handles(Review.Hidden, Review.Restored)
    def _review_visibility(self, session: Session, env: Envelope) -> None:
        old = self._score(session, env)
        visible = isinstance(env.event, Review.Restored)
        if old.visible != visible:
            self._rate(session, old.product_id, old.score, 1 if visible else -1)
            self._set_score(session, env, visible=visible)


class _NewListings:
    """Products listed since the last write, with their terms, prices and price intervals."""

    def __init__(self, catalog: Catalog, session: Session) -> None:
        self.catalog = catalog
        self.session = session
        self._clear()
        self.visible: dict[str, bool] = {}  # seller id -> visible, until an account event

    def read_sellers(self, seller_ids: set[str]) -> None:
        s = self.catalog.tables["sellers"]
        self.visible = dict.fromkeys(seller_ids, False)
        for row in load(self.session, s, "seller_id", seller_ids):
            self.visible[row["seller_id"]] = _visible(SimpleNamespace(**row))

    def _clear(self) -> None:
        self.products: dict[str, dict[str, Any]] = {}
        self.terms: list[tuple[str, str, int]] = []  # (term, product id, weight)
        self.prices: list[dict[str, Any]] = []
        self.intervals: list[dict[str, Any]] = []
        self.open: dict[str, dict[str, Any]] = {}  # product id -> its open interval

    def holds(self, product_id: str) -> bool:
        return product_id in self.products

    def listed(self, env: Envelope) -> None:
        e = env.event
        visible = self.visible.get(e.seller_id)
        if visible is None:
            visible = self.visible[e.seller_id] = self.catalog._seller_visible(
                self.session, e.seller_id
            )
        row = _product_row(env, visible)
        product_id = row["product_id"]
        self.products[product_id] = row
        self.terms.extend(_term_rows(product_id, e.name, e.description))
        self._price(env, product_id, row["created_at"], row["price_minor"], None)

    def price_changed(self, env: Envelope) -> None:
        e = env.event
        product_id = str(env.originator_id)
        at = naive_utc(e.at)
        price = to_minor(e.price)
        row = self.products[product_id]
        row.update(price_minor=price, updated_at=at, version=env.originator_version)
        if product_id in self.open:  # a new listing is active (if live: not waiting for review)
            self.open[product_id]["valid_to"] = at
        self._price(env, product_id, at, price, to_minor(e.previous))

    def _price(
        self, env: Envelope, product_id: str, at: Any, price: int, previous: int | None
    ) -> None:
        self.prices.append(_price_row(env, product_id, at, price, previous))
        if not self.products[product_id]["live"]:
            return
        category_id = self.products[product_id]["category_id"]
        interval = _interval_row(env, product_id, category_id, price, at)
        self.intervals.append(interval)
        self.open[product_id] = interval

    def write(self) -> None:
        if not self.products:
            return
        tables = self.catalog.tables
        insert_many(self.session, tables["products"], self.products.values())
        # In key order each b-tree page is visited once per batch: 2x faster on SQLite, and
        # 2.2x on MariaDB once the table outgrows the buffer pool (bench/README.md).
        self.terms.sort()
        insert_tuples(self.session, tables["terms"], self.terms)
        insert_many(self.session, tables["prices"], self.prices)
        insert_many(self.session, tables["intervals"], self.intervals)
        self._clear()


# --- rows, the same whether written one event at a time or in bulk ---------------------------
def _product_row(env: Envelope, visible: bool) -> dict[str, Any]:
    """A newly listed product (``env``: its ``Product.Listed``)."""
    e = env.event
    at = naive_utc(e.at)
    waiting = bool(getattr(e, "under_review", False))  # listings before moderation: live
    return {
        "product_id": str(env.originator_id),
        "seller_id": e.seller_id,
        "name": e.name,
        "description": e.description,
        "category_id": e.category_id,
        "price_minor": to_minor(e.price),
        "images": json.dumps(e.images, ensure_ascii=False),
        "supplier_ids": json.dumps(e.supplier_ids, ensure_ascii=False),
        "status": "active",
        "seller_visible": visible,
        "listed": visible and not waiting,
        "units_sold": 0,
        "created_at": at,
        "updated_at": at,
        "version": env.originator_version,
        "rating_sum": 0,
        "review_count": 0,
        "rating_x10": None,
        "live": not waiting,
        "review_status": "pending" if waiting else "approved",
        "review_reason": None,
        "pending_changes": None,
        "submitted_at": at if waiting else None,
    }


def rating_x10(score_sum: int, count: int) -> int | None:
    """The average score x 10, rounded half up, in integers (no float drift); None if none."""
    return (20 * score_sum + count) // (2 * count) if count else None


def _term_rows(product_id: str, name: str, description: str) -> list[tuple[str, str, int]]:
    """A product's search postings: (term, product id, weight), in the table's column order."""
    return [(term, product_id, w) for term, w in document_terms(name, description).items()]


def _price_row(
    env: Envelope, product_id: str, at: datetime | None, price: int, previous: int | None
) -> dict[str, Any]:
    return {
        "position": env.position,
        "product_id": product_id,
        "at": at,
        "price_minor": price,
        "previous_minor": previous,
        "actor": env.actor,
    }


def _interval_row(
    env: Envelope, product_id: str, category_id: str, price: int, at: datetime | None
) -> dict[str, Any]:
    """A price in effect from ``at`` (naive UTC) on, until closed."""
    return {
        "position": env.position,
        "product_id": product_id,
        "category_id": category_id,
        "price_minor": price,
        "valid_from": at,
        "valid_to": OPEN_END,
    }


#: The prefix of every account event's topic (seller visibility may change).
_ACCOUNT_EVENTS = get_topic(Account) + "."


def _visible(row: Any) -> bool:
    return bool(row.role == "seller" and row.active and not row.listing_suspended)


live = Catalog.live_tables()
