"""Inventory read model: warehouses, suppliers and their products, stock levels per product and
warehouse (on hand, reserved), and the stock movement ledger."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
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

from aggregates.catalog import Product
from aggregates.inventory import Inventory, Supplier, Warehouse
from projections.base import (
    Envelope,
    Projection,
    Timestamp,
    handles,
    naive_utc,
    rows_changed,
)


class InventoryView(Projection):
    name = "inventory"

    @classmethod
    def define_tables(cls, metadata: MetaData, suffix: str = "") -> dict[str, Table]:
        warehouses = Table(
            f"rm_warehouses{suffix}",
            metadata,
            Column("warehouse_id", String(36), primary_key=True),
            Column("code", String(20), nullable=False, unique=True),
            Column("name", String(100), nullable=False),
            Column("address", String(300), nullable=False),
            Column("created_at", Timestamp, nullable=False),
        )
        suppliers = Table(
            f"rm_suppliers{suffix}",
            metadata,
            Column("supplier_id", String(36), primary_key=True),
            Column("name", String(100), nullable=False),
            Column("contact_email", String(320)),
            Column("phone", String(30)),
            Column("address", String(300), nullable=False),
            Column("created_at", Timestamp, nullable=False),
        )
        links = Table(
            f"rm_product_suppliers{suffix}",
            metadata,
            Column("product_id", String(36), primary_key=True),
            Column("supplier_id", String(36), primary_key=True),
        )
        Index(None, links.c.supplier_id)
        stock = Table(
            f"rm_stock{suffix}",
            metadata,
            Column("product_id", String(36), primary_key=True),
            Column("warehouse_id", String(36), primary_key=True),
            Column("seller_id", String(36), nullable=False, index=True),
            Column("on_hand", BigInteger, nullable=False),
            Column("reserved", BigInteger, nullable=False),
        )
        movements = Table(
            f"rm_stock_movements{suffix}",
            metadata,
            Column("position", BigInteger, primary_key=True, autoincrement=False),
            Column("seq", Integer, primary_key=True, autoincrement=False),
            Column("product_id", String(36), nullable=False),
            Column("warehouse_id", String(36), nullable=False),
            Column("kind", String(20), nullable=False),
            Column("on_hand_change", BigInteger, nullable=False),
            Column("reserved_change", BigInteger, nullable=False),
            Column("reference", String(64)),
            Column("note", String(300)),
            Column("at", Timestamp, nullable=False),
            Column("actor", String(64)),
        )
        Index(None, movements.c.product_id, movements.c.position)
        owners = Table(
            f"rm_inventory_owners{suffix}",
            metadata,
            Column("inventory_id", String(36), primary_key=True),
            Column("product_id", String(36), nullable=False),
            Column("seller_id", String(36), nullable=False),
        )
        return {
            "warehouses": warehouses,
            "suppliers": suppliers,
            "links": links,
            "stock": stock,
            "movements": movements,
            "owners": owners,
        }

    # --- warehouses, suppliers, links ----------------------------------------------------
    @handles(Warehouse.Created)
    def _warehouse(self, session: Session, env: Envelope) -> None:
        e = env.event
        session.execute(
            insert(self.tables["warehouses"]).values(
                warehouse_id=str(env.originator_id),
                code=e.code,
                name=e.name,
                address=e.address,
                created_at=naive_utc(e.timestamp),
            )
        )

    @handles(Supplier.Created)
    def _supplier(self, session: Session, env: Envelope) -> None:
        e = env.event
        session.execute(
            insert(self.tables["suppliers"]).values(
                supplier_id=str(env.originator_id),
                name=e.name,
                contact_email=e.contact_email,
                phone=e.phone,
                address=e.address,
                created_at=naive_utc(e.timestamp),
            )
        )

    def _link(self, session: Session, product_id: str, supplier_ids: list[str]) -> None:
        t = self.tables["links"]
        session.execute(delete(t).where(t.c.product_id == product_id))
        if supplier_ids:
            session.execute(
                insert(t), [{"product_id": product_id, "supplier_id": s} for s in supplier_ids]
            )

    @handles(Product.Listed)
    def _listed(self, session: Session, env: Envelope) -> None:
        self._link(session, str(env.originator_id), env.event.supplier_ids)

    @handles(Product.Edited)
    def _edited(self, session: Session, env: Envelope) -> None:
        if "supplier_ids" in env.event.changes:
            self._link(session, str(env.originator_id), env.event.changes["supplier_ids"])

    # --- stock ---------------------------------------------------------------------------
    def _move(
        self,
        session: Session,
        env: Envelope,
        seq: int,
        warehouse_id: str,
        kind: str,
        on_hand: int = 0,
        reserved: int = 0,
        reference: str | None = None,
        note: str | None = None,
    ) -> None:
        s = self.tables["stock"]
        inventory_key = str(env.originator_id)
        product_id, seller_id = self._owner(session, inventory_key)
        changed = rows_changed(
            session,
            update(s)
            .where(s.c.product_id == product_id, s.c.warehouse_id == warehouse_id)
            .values(on_hand=s.c.on_hand + on_hand, reserved=s.c.reserved + reserved),
        )
        if not changed:
            session.execute(
                insert(s).values(
                    product_id=product_id,
                    warehouse_id=warehouse_id,
                    seller_id=seller_id,
                    on_hand=on_hand,
                    reserved=reserved,
                )
            )
        session.execute(
            insert(self.tables["movements"]).values(
                position=env.position,
                seq=seq,
                product_id=product_id,
                warehouse_id=warehouse_id,
                kind=kind,
                on_hand_change=on_hand,
                reserved_change=reserved,
                reference=reference,
                note=note,
                at=naive_utc(env.event.at),
                actor=env.actor,
            )
        )

    def _owner(self, session: Session, inventory_id: str) -> tuple[str, str]:
        o = self.tables["owners"]
        row = session.execute(
            select(o.c.product_id, o.c.seller_id).where(o.c.inventory_id == inventory_id)
        ).one()
        return row.product_id, row.seller_id

    @handles(Inventory.Opened)
    def _opened(self, session: Session, env: Envelope) -> None:
        session.execute(
            insert(self.tables["owners"]).values(
                inventory_id=str(env.originator_id),
                product_id=env.event.product_id,
                seller_id=env.event.seller_id,
            )
        )

    @handles(Inventory.Received)
    def _received(self, session: Session, env: Envelope) -> None:
        e = env.event
        self._move(
            session,
            env,
            0,
            e.warehouse_id,
            "RECEIPT",
            on_hand=e.quantity,
            reference=e.receipt_id,
            note=None if e.supplier_id is None else f"supplier {e.supplier_id}",
        )

    @handles(Inventory.Transferred)
    def _transferred(self, session: Session, env: Envelope) -> None:
        e = env.event
        self._move(
            session,
            env,
            0,
            e.from_warehouse,
            "TRANSFER_OUT",
            on_hand=-e.quantity,
            reference=e.transfer_id,
        )
        self._move(
            session,
            env,
            1,
            e.to_warehouse,
            "TRANSFER_IN",
            on_hand=e.quantity,
            reference=e.transfer_id,
        )

    @handles(Inventory.Adjusted)
    def _adjusted(self, session: Session, env: Envelope) -> None:
        e = env.event
        self._move(
            session,
            env,
            0,
            e.warehouse_id,
            f"ADJUST_{e.reason}",
            on_hand=e.change,
            reference=e.adjustment_id,
            note=e.note or None,
        )

    @handles(Inventory.Reserved)
    def _reserved(self, session: Session, env: Envelope) -> None:
        e = env.event
        for seq, (warehouse_id, units) in enumerate(sorted(e.allocation.items())):
            self._move(
                session, env, seq, warehouse_id, "RESERVED", reserved=units, reference=e.order_id
            )

    @handles(Inventory.Released)
    def _released(self, session: Session, env: Envelope) -> None:
        e = env.event
        for seq, (warehouse_id, units) in enumerate(sorted(e.allocation.items())):
            self._move(
                session, env, seq, warehouse_id, "RELEASED", reserved=-units, reference=e.order_id
            )

    @handles(Inventory.Allocated)
    def _allocated(self, session: Session, env: Envelope) -> None:
        e = env.event
        seq = 0
        for warehouse_id, units in sorted(e.previous.items()):
            self._move(
                session,
                env,
                seq,
                warehouse_id,
                "UNALLOCATED",
                reserved=-units,
                reference=e.order_id,
            )
            seq += 1
        for warehouse_id, units in sorted(e.allocation.items()):
            self._move(
                session, env, seq, warehouse_id, "ALLOCATED", reserved=units, reference=e.order_id
            )
            seq += 1

    @handles(Inventory.Dispatched)
    def _dispatched(self, session: Session, env: Envelope) -> None:
        e = env.event
        for seq, (warehouse_id, units) in enumerate(sorted(e.taken.items())):
            self._move(
                session,
                env,
                seq,
                warehouse_id,
                "SHIPPED",
                on_hand=-units,
                reserved=-units,
                reference=e.shipment_id,
                note=f"order {e.order_id}",
            )

    @handles(Inventory.Returned)
    def _returned(self, session: Session, env: Envelope) -> None:
        e = env.event
        self._move(
            session,
            env,
            0,
            e.warehouse_id,
            "RETURN",
            on_hand=e.quantity,
            reference=e.return_id,
        )


live = InventoryView.live_tables()
