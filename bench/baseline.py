"""The yardstick of ``bench.checkout``: the same checkout on a bare stack, no event sourcing.

FastAPI + SQLAlchemy Core on PyMySQL doing what a plain CRUD shop does per order: an RS256 JWT
check per request, 1-3 cart adds (product read, cart row upsert), then one checkout transaction
(cart + products ``FOR UPDATE``, stock check and decrement, order row, item rows, a seller
notification row, cart cleared). One uvicorn process, on a throw-away MariaDB database, driven
by worker threads like shopledger's unthrottled phase.

    python -m bench.baseline [--seconds 20] [--workers 8]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pymysql
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.common import MARIADB, database, free_port

APP = r"""
import os, uuid, jwt, sqlalchemy as sa
from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel
from cryptography.hazmat.primitives import serialization
eng = sa.create_engine(os.environ["DB_URL"], pool_size=16, max_overflow=0, pool_pre_ping=False)
pub = serialization.load_pem_public_key(open(os.environ["PUB"], "rb").read())
app = FastAPI()
def who(authorization: str) -> str:
    try:
        return jwt.decode(authorization.split()[1], pub, algorithms=["RS256"])["sub"]
    except Exception:
        raise HTTPException(401)
class Item(BaseModel):
    productId: str
    quantity: int
@app.post("/cart/items", status_code=201)
def add(item: Item, authorization: str = Header()):
    b = who(authorization)
    with eng.begin() as c:
        p = c.execute(sa.text("SELECT price, listed FROM products WHERE id=:p"),
                      {"p": item.productId}).first()
        if not p or not p.listed:
            raise HTTPException(422)
        c.execute(sa.text("INSERT INTO cart (buyer, product, qty) VALUES (:b,:p,:q) "
                          "ON DUPLICATE KEY UPDATE qty = qty + :q"),
                  {"b": b, "p": item.productId, "q": item.quantity})
    return {"ok": True}
@app.post("/orders", status_code=201)
def checkout(authorization: str = Header()):
    b = who(authorization)
    oid = str(uuid.uuid4())
    with eng.begin() as c:
        lines = c.execute(sa.text(
            "SELECT c.product, c.qty, p.price, p.stock, p.seller FROM cart c JOIN products p "
            "ON p.id = c.product WHERE c.buyer=:b ORDER BY c.product FOR UPDATE"), {"b": b}).all()
        if not lines:
            raise HTTPException(404)
        total = 0
        for l in lines:
            if l.stock < l.qty:
                raise HTTPException(422)
            total += l.price * l.qty
        c.execute(sa.text("INSERT INTO orders (id, buyer, total, status) "
                          "VALUES (:o,:b,:t,'CREATED')"), {"o": oid, "b": b, "t": total})
        for l in lines:
            c.execute(sa.text("UPDATE products SET stock = stock - :q WHERE id=:p"),
                      {"q": l.qty, "p": l.product})
            c.execute(sa.text("INSERT INTO order_items (order_id, product, qty, price) "
                              "VALUES (:o,:p,:q,:pr)"),
                      {"o": oid, "p": l.product, "q": l.qty, "pr": l.price})
            c.execute(sa.text("INSERT INTO notifications (user_id, kind, ref) "
                              "VALUES (:u,'ORDER_PLACED',:o)"), {"u": l.seller, "o": oid})
        c.execute(sa.text("DELETE FROM cart WHERE buyer=:b"), {"b": b})
    return {"orderId": oid, "total": str(total)}
"""

SCHEMA = [
    (
        "CREATE TABLE products (id CHAR(36) PRIMARY KEY, seller CHAR(36), price DECIMAL(12,2),"
        " stock INT, listed BOOL)"
    ),
    "CREATE TABLE cart (buyer CHAR(36), product CHAR(36), qty INT, PRIMARY KEY (buyer, product))",
    (
        "CREATE TABLE orders (id CHAR(36) PRIMARY KEY, buyer CHAR(36), total DECIMAL(12,2),"
        " status VARCHAR(20), created TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))"
    ),
    (
        "CREATE TABLE order_items (id BIGINT AUTO_INCREMENT PRIMARY KEY, order_id CHAR(36),"
        " product CHAR(36), qty INT, price DECIMAL(12,2), KEY (order_id))"
    ),
    (
        "CREATE TABLE notifications (id BIGINT AUTO_INCREMENT PRIMARY KEY, user_id CHAR(36),"
        " kind VARCHAR(30), ref CHAR(36), KEY (user_id))"
    ),
]


def run_baseline(seconds: float, workers: int, products: int = 20, sellers: int = 4) -> Any:
    """Orders/s and checkout latency (ms) of the bare stack, unthrottled with ``workers``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    product_ids = [str(uuid.uuid4()) for _ in range(products)]
    seller_ids = [str(uuid.uuid4()) for _ in range(sellers)]
    with database("mariadb") as url, tempfile.TemporaryDirectory(prefix="sl-bare-") as work:
        name = url.rsplit("/", 1)[1]
        conn = pymysql.connect(**MARIADB, database=name)
        with conn.cursor() as cur:
            for statement in SCHEMA:
                cur.execute(statement)
            cur.executemany(
                "INSERT INTO products VALUES (%s, %s, %s, 1000000, 1)",
                [(p, seller_ids[i % sellers], 100 + i) for i, p in enumerate(product_ids)],
            )
        conn.commit()
        conn.close()
        Path(work, "pub.pem").write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        Path(work, "app.py").write_text(APP)
        env = {"DB_URL": url, "PUB": f"{work}/pub.pem", "PATH": "/usr/bin:/bin"}
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app:app", "--port", str(port)]
            + ["--log-level", "warning", "--no-access-log"],
            cwd=work,
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(150):
                try:
                    httpx.get(base + "/docs")
                    break
                except httpx.HTTPError:
                    time.sleep(0.2)
            tokens = [
                jwt.encode(
                    {"sub": str(uuid.uuid4()), "exp": int(time.time()) + 3600},
                    key,
                    algorithm="RS256",
                )
                for _ in range(40)
            ]
            latencies: list[float] = []
            errors = [0]
            stop_at = time.monotonic() + seconds

            def run(i: int) -> None:
                client = httpx.Client(timeout=30)
                rnd = random.Random(i)
                while time.monotonic() < stop_at:
                    headers = {"Authorization": f"Bearer {tokens[i % len(tokens)]}"}
                    for _ in range(rnd.randint(1, 3)):
                        client.post(
                            base + "/cart/items",
                            json={"productId": rnd.choice(product_ids), "quantity": 1},
                            headers=headers,
                        )
                    t = time.perf_counter()
                    r = client.post(base + "/orders", headers=headers)
                    if r.status_code == 201:
                        latencies.append((time.perf_counter() - t) * 1000)
                    else:
                        errors[0] += 1

            started = time.monotonic()
            threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - started
        finally:
            server.terminate()
            server.wait()
    q = statistics.quantiles(latencies, n=100)
    return {
        "orders": len(latencies),
        "orders_per_s": len(latencies) / elapsed,
        "p50": q[49],
        "p95": q[94],
        "p99": q[98],
        "errors": errors[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    r = run_baseline(args.seconds, args.workers)
    print(
        f"bare baseline: workers {args.workers}  orders {r['orders']}"
        f"  orders/s {r['orders_per_s']:.1f}  checkout p50 {r['p50']:.1f} p95 {r['p95']:.1f}"
        f" p99 {r['p99']:.1f} ms  non-201 {r['errors']}"
    )


if __name__ == "__main__":
    main()
