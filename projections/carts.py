"""Carts read model: what each buyer has in the cart (priced at read time from the catalog)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from aggregates.cart import Cart
from projections.base import Envelope, Projection, handles, rows_changed


class Carts(Projection):
    name = "carts"

    @classmethod
    def define_tables(cls, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        carts = Table(
            f"rm_carts{suffix}",
            metadata,
            Column("cart_id", String(36), primary_key=True),
            Column("buyer_id", String(36), nullable=False, unique=True),
        )
        items = Table(
            f"rm_cart_items{suffix}",
            metadata,
            Column("buyer_id", String(36), primary_key=True),
            Column("product_id", String(36), primary_key=True),
            Column("quantity", Integer, nullable=False),
            Column("position", BigInteger, nullable=False),
        )
        return {"carts": carts, "items": items}

    def _buyer(self, session: Session, env: Envelope) -> str:
        c = self.tables["carts"]
        return str(
            session.execute(
                select(c.c.buyer_id).where(c.c.cart_id == str(env.originator_id))
            ).scalar_one()
        )

    @handles(Cart.Opened)
    def _opened(self, session: Session, env: Envelope) -> None:
        session.execute(
            insert(self.tables["carts"]).values(
                cart_id=str(env.originator_id), buyer_id=env.event.buyer_id
            )
        )

    @handles(Cart.ItemSet)
    def _set(self, session: Session, env: Envelope) -> None:
        t = self.tables["items"]
        buyer = self._buyer(session, env)
        changed = rows_changed(
            session,
            update(t)
            .where(t.c.buyer_id == buyer, t.c.product_id == env.event.product_id)
            .values(quantity=env.event.quantity),
        )
        if not changed:
            session.execute(
                insert(t).values(
                    buyer_id=buyer,
                    product_id=env.event.product_id,
                    quantity=env.event.quantity,
                    position=env.position,
                )
            )

    @handles(Cart.ItemRemoved)
    def _removed(self, session: Session, env: Envelope) -> None:
        t = self.tables["items"]
        session.execute(
            delete(t).where(
                t.c.buyer_id == self._buyer(session, env), t.c.product_id == env.event.product_id
            )
        )

    @handles(Cart.CheckedOut)
    def _checked_out(self, session: Session, env: Envelope) -> None:
        t = self.tables["items"]
        session.execute(delete(t).where(t.c.buyer_id == self._buyer(session, env)))


live = Carts.live_tables()
