"""The OpenAPI document (/openapi.json): its structure, and the app's answers against it.

Structure: every operation documents a 2xx with a schema, its error answers with the envelope
(and the error codes it answers), no FastAPI 422 ``HTTPValidationError``, security on the
operations that authenticate, the consistency, idempotency and request-id headers.

Conformance: a walk through the shop's flows (every success body checked against its documented
schema, undocumented fields included), then schemathesis/hypothesis cases for EVERY operation,
as a buyer, a seller, an admin and anonymously, with ids of real objects in some paths: no 5xx,
every status documented, every body as documented, every error code among those documented.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import hypothesis
import jsonschema
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api import openapi
from api.app import create_app
from api.openapi import RouteFacts, api_routes
from shopledger.bootstrap import bootstrap
from tests.conftest import ClientFactory, make_settings
from tests.support.accounts import User, admin, login, verified_user, wait
from tests.support.catalog import ADDRESS, add_to_cart, category, checkout, seller, warehouse

#: Generated cases per operation (about 45 s in all); CONFORMANCE_EXAMPLES=50 and
#: CONFORMANCE_RANDOM=1 (new cases each run instead of the same ones) for a longer hunt.
EXAMPLES = int(os.environ.get("CONFORMANCE_EXAMPLES", "8"))
RANDOM = os.environ.get("CONFORMANCE_RANDOM", "") == "1"
#: FastAPI's own validation answer, which this API never gives.
FASTAPI_422 = ("HTTPValidationError", "ValidationError")
#: 422 is for business refusals only (API.md, seeds/003).
DOMAIN_422 = {
    "INSUFFICIENT_STOCK",
    "PRODUCT_UNAVAILABLE",
    "ORDER_LIMIT_EXCEEDED",
    "PAYMENT_FAILED",
    "REFUND_FAILED",
    "IDEMPOTENCY_CONFLICT",
}
TEST_ONLY = "/test/"  # tests/support/ledger_api.py, mounted by make_client
#: Streams that answer 200 and never end: tests/e2e/test_live_push.py drives them.
ENDLESS = {"/api/notifications/stream"}
CARD = {"number": "4242424242424242", "expiryMonth": 12, "expiryYear": 2031, "cvv": "123"}


def installed(app: Any) -> Any:
    """The app with the document completed (api/app.py may already do it)."""
    if not openapi.is_installed(app):
        openapi.install(app)
    return app


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        if path.startswith(TEST_ONLY):
            continue
        for method, operation in item.items():
            if method in ("get", "put", "post", "patch", "delete"):
                yield path, method, operation


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("openapi")
    container = bootstrap(make_settings(f"sqlite:///{tmp / 'doc.db'}", tmp))
    app = installed(create_app(container, run_background=False, run_mail=False))
    response = TestClient(app).get("/openapi.json")
    assert response.status_code == 200
    yield {"doc": response.json(), "routes": list(api_routes(app))}
    container.close()


# --- structure ------------------------------------------------------------------------------
def test_fastapis_422_is_gone_from_every_operation_and_from_the_components(document) -> None:
    doc = document["doc"]
    schemas = doc["components"]["schemas"]
    assert not set(FASTAPI_422) & set(schemas)
    for path, method, operation in operations(doc):
        validation = operation["responses"].get("422")
        if validation is not None:
            codes = set(validation["x-error-codes"])
            assert codes and codes <= DOMAIN_422, (method, path, codes)
        validated = "application/json" in operation.get("requestBody", {}).get(
            "content", {}
        ) or any(p.get("in") == "query" for p in operation["parameters"])
        assert "400" in operation["responses"] or not validated, (method, path)


def test_every_operation_documents_a_success_body_and_its_errors(document) -> None:
    doc = document["doc"]
    for path, method, operation in operations(doc):
        responses = operation["responses"]
        successes = [s for s in responses if s[0] in "23"]
        assert successes, (method, path)
        for status in successes:
            content = responses[status].get("content")
            if status == "204" or status.startswith("3"):  # no body (ECPay's way back: 303)
                assert not content, (method, path)
                continue
            assert content, (method, path, status)
            for media, body in content.items():
                schema = body.get("schema")
                assert schema, (method, path, status, media)
                if media == "application/json":
                    assert schema.get("$ref", "").startswith("#/components/schemas/"), (path,)
        for status, response in responses.items():
            if status[0] not in "45" or response.get("content", {}).keys() == {"text/html"}:
                continue  # ECPay's page answers its own errors as pages
            schema = response["content"]["application/json"]["schema"]
            envelope = "ValidationErrorResponse" if status == "400" else "ErrorResponse"
            if status != "503" or "x-error-codes" in response:  # /readyz: its own body
                assert schema == {"$ref": f"#/components/schemas/{envelope}"}, (method, path)
                assert response["x-error-codes"], (method, path, status)
                assert all(c in response["description"] for c in response["x-error-codes"])


def test_the_error_envelopes_are_as_the_api_answers_them(document) -> None:
    schemas = document["doc"]["components"]["schemas"]
    assert schemas["ErrorResponse"]["required"] == ["error"]
    assert set(schemas["ErrorInfo"]["required"]) == {"code", "message", "details"}
    problem = schemas["ValidationProblem"]
    assert set(problem["required"]) == {"field", "problem", "message"}
    details = schemas["ValidationErrorDetails"]["properties"]["errors"]
    assert details["items"] == {"$ref": "#/components/schemas/ValidationProblem"}


def test_operations_that_authenticate_declare_how(document) -> None:
    doc, routes = document["doc"], document["routes"]
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": schemes["bearerAuth"]["description"],
    }
    assert "RS256" in schemes["bearerAuth"]["description"]
    assert (schemes["cookieAuth"]["in"], schemes["cookieAuth"]["name"]) == ("cookie", "sl_access")
    assert (schemes["csrfToken"]["in"], schemes["csrfToken"]["name"]) == ("header", "X-CSRF-Token")
    protected = 0
    for route in routes:
        if route.path_format.startswith(TEST_ONLY):
            continue
        facts = RouteFacts(route)
        for method in route.methods:
            operation = doc["paths"][route.path_format][method.lower()]
            security = operation.get("security")
            if not (facts.auth_required or facts.auth_optional):
                if route.path_format != "/api/auth/refresh":
                    assert security is None, (method, route.path_format)
                continue
            protected += 1
            assert {"bearerAuth": []} in security, (method, route.path_format)
            cookie: dict[str, list[str]] = {"cookieAuth": []}
            if method != "GET":
                cookie["csrfToken"] = []
            assert cookie in security, (method, route.path_format)
            assert ({} in security) == facts.auth_optional, (method, route.path_format)
            assert "UNAUTHORIZED" in operation["responses"]["401"]["x-error-codes"]
            assert "ACCOUNT_DISABLED" in operation["responses"]["403"]["x-error-codes"]
            if facts.roles:
                assert "FORBIDDEN" in operation["responses"]["403"]["x-error-codes"]
    assert protected > 50


def test_headers_are_documented(document) -> None:
    doc, routes = document["doc"], document["routes"]
    parameters = doc["components"]["parameters"]
    assert parameters["X-Min-Position"]["schema"]["type"] == "integer"
    assert "eventual" in parameters["X-Consistency"]["schema"]["enum"]
    assert parameters["X-Request-ID"]["required"] is False
    assert doc["components"]["headers"]["X-Event-Position"]["schema"]["type"] == "integer"
    ref = "#/components/parameters/"
    reading = 0
    for route in routes:
        if route.path_format.startswith(TEST_ONLY):
            continue
        facts = RouteFacts(route)
        for method in route.methods:
            operation = doc["paths"][route.path_format][method.lower()]
            refs = [p.get("$ref") for p in operation["parameters"]]
            assert ref + "X-Request-ID" in refs
            reads = ref + "X-Min-Position" in refs and ref + "X-Consistency" in refs
            assert reads == facts.reads, (method, route.path_format)
            if facts.reads:
                reading += 1
                assert operation["responses"]["503"]["headers"]["Retry-After"]
            for status, response in operation["responses"].items():
                has_position = "X-Event-Position" in response.get("headers", {})
                assert has_position == (method != "GET"), (method, route.path_format, status)
            if method == "POST" and "201" in operation["responses"]:  # creates something
                assert ref + "Idempotency-Key" in refs, route.path_format
    assert reading > 25


def test_every_request_body_has_a_valid_example(document) -> None:
    doc = document["doc"]
    components = doc["components"]
    for path, method, operation in operations(doc):
        body = operation.get("requestBody")
        if body is None:
            continue
        for media, content in body["content"].items():
            schema = content["schema"]
            if media != "application/json":
                continue
            refs = [schema] + schema.get("anyOf", [])
            name = next(s["$ref"] for s in refs if "$ref" in s).rsplit("/", 1)[-1]
            examples = components["schemas"][name].get("examples")
            assert examples, (method, path)
            for example in examples:
                errors = Contract.errors({**schema, "components": components}, example)
                assert not errors, (method, path, errors)
                if "price" in example:
                    assert example["price"]["currency"] == "TWD"


def test_operations_have_a_summary_and_one_tag_of_an_area(document) -> None:
    doc = document["doc"]
    areas = {t["name"] for t in doc["tags"]}
    assert {"auth", "users", "catalog", "inventory", "cart", "coupons"} <= areas
    assert {"sales", "payments", "fulfilment", "notifications", "health"} <= areas
    for path, method, operation in operations(doc):
        assert len(operation["tags"]) == 1 and operation["tags"][0] in areas, (method, path)
        summary = operation["summary"]
        assert summary and "\n" not in summary and len(summary) <= 100, (method, path, summary)
    tags = {p: o["tags"][0] for p, _, o in operations(doc)}
    assert tags["/api/coupons"] == "coupons" and tags["/api/notifications"] == "notifications"


def test_status_and_method_fields_are_enums(document) -> None:
    schemas = document["doc"]["components"]["schemas"]
    checked = 0

    def enumerated(schema: dict[str, Any]) -> bool:
        if "enum" in schema or "const" in schema:
            return True
        if "$ref" in schema:
            return enumerated(schemas[schema["$ref"].rsplit("/", 1)[-1]])
        options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
        return bool(options) and all(enumerated(s) for s in options)

    for name, schema in schemas.items():
        for prop, definition in schema.get("properties", {}).items():
            if prop in ("status", "role", "groupBy") or prop.endswith(("Status", "Method")):
                checked += 1
                assert enumerated(definition), (name, prop, definition)
    assert checked > 40


# --- conformance ----------------------------------------------------------------------------
class Contract:
    """Checks an answer against the document, strictly: an undocumented field is an error."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.components = self.strict(copy.deepcopy(document["components"]))
        # One validator per documented answer: building one resolves the whole document.
        self._validators: dict[tuple[str, str, str], Any] = {}

    def validator(self, method: str, template: str, status: str, schema: Any) -> Any:
        key = (method, template, status)
        found = self._validators.get(key)
        if found is None:
            strict = self.strict(copy.deepcopy(schema))
            found = jsonschema.Draft202012Validator(
                {**strict, "components": self.components},
                format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
            )
            self._validators[key] = found
        return found

    @classmethod
    def strict(cls, schema: Any) -> Any:
        if isinstance(schema, dict):
            if "properties" in schema:
                schema.setdefault("additionalProperties", False)
            for value in schema.values():
                cls.strict(value)
        elif isinstance(schema, list):
            for value in schema:
                cls.strict(value)
        return schema

    @staticmethod
    def errors(schema: dict[str, Any], instance: Any) -> list[str]:
        validator = jsonschema.Draft202012Validator(
            schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        return [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}"
            for e in validator.iter_errors(instance)
        ]

    def problems(self, method: str, template: str, response: Any) -> list[str]:
        operation = self.document["paths"][template][method.lower()]
        status = str(response.status_code)
        where = f"{method.upper()} {template} → {status}"
        documented = operation["responses"].get(status)
        if documented is None:
            return [f"{where}: status not documented ({response.text[:300]})"]
        content = documented.get("content") or {}
        media = response.headers.get("content-type", "").split(";")[0].strip()
        if not content:
            return [] if not response.content else [f"{where}: a body where none is documented"]
        if media not in content:
            return [f"{where}: {media} not documented ({sorted(content)})"]
        if media != "application/json":
            return []
        body = response.json()
        validator = self.validator(method.lower(), template, status, content[media]["schema"])
        found = [
            f"{where}: {'/'.join(map(str, e.absolute_path))}: {e.message[:300]}"
            for e in validator.iter_errors(body)
        ]
        codes = documented.get("x-error-codes")
        if codes and isinstance(body, dict) and "error" in body:
            code = body["error"].get("code")
            if code not in codes:
                found.append(f"{where}: error code {code} not among {codes}")
        return found


@dataclass
class Shop:
    """A seeded shop: its people (with their bearer tokens) and real objects to aim at."""

    client: TestClient
    contract: Contract
    people: dict[str, User | None] = field(default_factory=dict)
    spare: dict[str, User] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def call(
        self,
        method: str,
        template: str,
        who: str | None = None,
        expect: int | None = None,
        **kw: Any,
    ) -> Any:
        path = template.format(**{k: v for k, v in self.ids.items() if "{" + k + "}" in template})
        headers = dict(kw.pop("headers", {}))
        user = self.people.get(who) if who else None
        if user is not None:
            headers.update(user.auth)
        response = self.client.request(method, path, headers=headers, follow_redirects=False, **kw)
        self.failures += self.contract.problems(method, template, response)
        if expect is not None:
            assert response.status_code == expect, (method, path, response.text[:500])
        return response


def open_shop(make_client: ClientFactory, **settings: Any) -> Shop:
    client = make_client(**settings)
    installed(client.app)
    document = client.get("/openapi.json").json()
    shop = Shop(client, Contract(document))
    boss = admin(client)
    shop.people = {"admin": boss, "seller": seller(client, boss), "buyer": verified_user(client)}
    return shop


def test_the_shops_flows_answer_as_documented(make_client: ClientFactory) -> None:
    """Every success answer of the main flows, checked field by field against the document."""
    shop = open_shop(make_client)
    client, ids, call = shop.client, shop.ids, shop.call
    buyer, owner = shop.people["buyer"], shop.people["seller"]
    assert buyer is not None and owner is not None
    call("GET", "/healthz", expect=200)
    call("GET", "/readyz", expect=200)
    call("GET", "/.well-known/jwks.json", expect=200)
    email = f"flow{uuid4().hex[:8]}@example.com"
    body = {"email": email, "username": f"f{uuid4().hex[:8]}", "password": "Taipei101-sunrise"}
    call("POST", "/api/auth/register", json=body, expect=201)
    call("POST", "/api/auth/register", json=body, expect=409)
    call("POST", "/api/auth/register", json={**body, "extra": 1}, expect=400)
    cookie = call(
        "POST",
        "/api/auth/login",
        json={"email": buyer.email, "password": buyer.password, "useCookies": True},
        expect=200,
    )
    csrf = {"X-CSRF-Token": cookie.json()["csrfToken"]}
    call("POST", "/api/auth/refresh", headers=csrf, expect=200)
    call("PATCH", "/api/users/me", json={"displayName": "王小明"}, expect=403)  # no CSRF token
    client.cookies.clear()
    pair = call("POST", "/api/auth/login", json={"email": buyer.email, "password": "x"}, expect=401)
    assert pair.json()["error"]["code"] == "UNAUTHORIZED"
    call("POST", "/api/auth/refresh", json={"refreshToken": buyer.refresh}, expect=200)
    login(client, buyer)
    call("POST", "/api/auth/resend-verification", "buyer", expect=409)
    call("PATCH", "/api/users/me", "buyer", json={"displayName": "小明"}, expect=200)
    address = {**ADDRESS, "label": "家", "isDefault": True}
    ids["address_id"] = call("POST", "/api/users/me/addresses", "buyer", json=address).json()[
        "addressId"
    ]
    wait(client)
    for path in ("/api/users/me", "/api/users/me/addresses", "/api/users/me/login-history"):
        call("GET", path, "buyer", expect=200)
    ids["user_id"] = owner.user_id
    call("GET", "/api/users", "admin", params={"pageSize": 2}, expect=200)
    call("GET", "/api/users/{user_id}", "admin", expect=200)
    call("GET", "/api/users/{user_id}/login-history", "admin", expect=200)
    call("GET", "/api/users", "buyer", expect=403)

    root = category(client, shop.people["admin"], "保養品")  # type: ignore[arg-type]
    ids["category_id"] = call(
        "POST", "/api/catalog/categories", "admin", json={"name": "乳液", "parentId": root}
    ).json()["categoryId"]
    product = {
        "name": "保濕乳液",
        "description": "台北製造",
        "categoryId": ids["category_id"],
        "price": {"value": 350, "currency": "TWD"},
        "images": ["https://cdn.example.com.tw/a.jpg"],
    }
    ids["product_id"] = pid = call(
        "POST", "/api/catalog/products", "seller", json=product, expect=201
    ).json()["productId"]
    price = {"price": {"value": 399.5, "currency": "TWD"}}
    call("PUT", "/api/catalog/products/{product_id}", "seller", json=price, expect=200)
    main = call(
        "POST",
        "/api/inventory/warehouses",
        "admin",
        json={"code": "TPE-1", "name": "台北倉", "address": "台北市信義區"},
        expect=201,
    ).json()["warehouseId"]
    other = warehouse(client, shop.people["admin"])  # type: ignore[arg-type]
    supplier = {"name": "阿里山茶葉", "contactEmail": "s@example.com", "phone": "05-267-1234"}
    ids["supplier_id"] = call(
        "POST", "/api/inventory/suppliers", "admin", json=supplier, expect=201
    ).json()["supplierId"]
    receipt = {
        "productId": pid,
        "warehouseId": main,
        "quantity": 50,
        "supplierId": ids["supplier_id"],
    }
    call("POST", "/api/inventory/receipts", "seller", json=receipt, expect=201)
    move = {"productId": pid, "fromWarehouseId": main, "toWarehouseId": other, "quantity": 5}
    call("POST", "/api/inventory/transfers", "seller", json=move, expect=201)
    call("POST", "/api/inventory/transfers", "seller", json={**move, "quantity": 999}, expect=422)
    fix = {"productId": pid, "warehouseId": main, "quantityChange": -1, "reason": "DAMAGED"}
    call("POST", "/api/inventory/adjustments", "seller", json=fix, expect=201)
    wait(client)
    for path, params in (
        ("/api/inventory/warehouses", {}),
        ("/api/inventory/suppliers", {}),
        ("/api/inventory/suppliers/{supplier_id}", {}),
        ("/api/inventory/stock", {"productId": pid}),
        ("/api/inventory/movements", {"productId": pid}),
    ):
        call("GET", path, "seller", params=params, expect=200)
    for who in (None, "seller"):
        call("GET", "/api/catalog/products", who, params={"q": "乳液"}, expect=200)
        call("GET", "/api/catalog/products/{product_id}", who, expect=200)
    call("GET", "/api/catalog/products", "seller", params={"sellerId": "me", "status": "all"})
    call("GET", "/api/catalog/categories", expect=200)
    call("GET", "/api/catalog/products/{product_id}/price-history", expect=200)
    trend = "/api/catalog/categories/{category_id}/price-trend"
    call("GET", trend, params={"groupBy": "WEEK"}, expect=200)
    call("GET", "/api/catalog/price-trends/compare", params={"productIds": pid}, expect=200)
    call("GET", "/api/catalog/banned-keywords", expect=200)
    keywords = {"keywords": ["仿冒", "盜版", "假貨"]}
    call("PUT", "/api/catalog/banned-keywords", "admin", json=keywords, expect=200)
    fixed = {"code": "SAVE50", "type": "FIXED", "value": 50, "minSpend": 300}
    call("POST", "/api/coupons", "admin", json=fixed, expect=201)
    percent = {"code": "PCT10", "type": "PERCENT", "value": 10, "maxDiscount": 100}
    call("POST", "/api/coupons", "admin", json=percent, expect=201)

    ids["code"] = "SAVE50"
    call("POST", "/api/cart/items", "buyer", json={"productId": pid, "quantity": 2}, expect=201)
    key = {"Idempotency-Key": uuid4().hex}
    line = {"productId": pid, "quantity": 1}
    call("POST", "/api/cart/items", "buyer", json=line, headers=key, expect=201)
    replay = call("POST", "/api/cart/items", "buyer", json=line, headers=key, expect=201)
    assert replay.headers["Idempotent-Replayed"] == "true"
    call("POST", "/api/cart/items", "buyer", json={**line, "quantity": 2}, headers=key, expect=422)
    call("PUT", "/api/cart/items/{product_id}", "buyer", json={"quantity": 3}, expect=200)
    wait(client)
    call("GET", "/api/cart", "buyer", expect=200)
    call("GET", "/api/coupons/{code}", "buyer", expect=200)
    placed = call("POST", "/api/sales/orders", "buyer", json=order_body(couponCode="SAVE50"))
    assert placed.status_code == 201, placed.text
    ids["order_id"] = placed.json()["orderId"]
    item = placed.json()["items"][0]["orderItemId"]
    card = {"paymentMethod": "CREDIT_CARD", "paymentData": {"cardDetails": CARD}}
    paid = call(
        "POST",
        "/api/sales/orders/{order_id}/payments",
        "buyer",
        json={**card, "amount": placed.json()["total"]},
        expect=200,
    )
    ids["payment_id"] = paid.json()["paymentId"]
    process = {"warehouseId": main, "estimatedShippingDate": "2030-01-02"}
    call("PUT", "/api/sales/orders/{order_id}/process", "seller", json=process, expect=200)
    parcel = {
        "carrier": "BLACK_CAT",
        "trackingNumber": "TC123456",
        "packageInfo": {"weight": 1.2, "dimensions": {"length": 30, "width": 20, "height": 10}},
    }
    shipped = call("POST", "/api/sales/orders/{order_id}/shipments", "seller", json=parcel)
    assert shipped.status_code == 201, shipped.text
    ids["shipment_id"] = shipped.json()["shipmentId"]
    delivered = {"status": "DELIVERED", "location": {"city": "台北市", "country": "TW"}}
    call("PUT", "/api/sales/shipments/{shipment_id}/status", "seller", json=delivered, expect=200)
    call("POST", "/api/sales/orders/{order_id}/confirm-receipt", "buyer", expect=200)
    invoice = {"recipientInfo": {"name": "王小明", "email": "w@example.com", "taxId": "12345678"}}
    call("POST", "/api/sales/orders/{order_id}/invoices", "admin", json=invoice, expect=201)
    call("POST", "/api/sales/orders/{order_id}/invoices", "admin", json=invoice, expect=409)
    back = {"reason": "瑕疵", "refundItems": [{"orderItemId": item, "quantity": 1}]}
    call("POST", "/api/sales/orders/{order_id}/refunds", "admin", json=back, expect=200)
    wait(client)
    for who in ("buyer", "seller", "admin"):
        call("GET", "/api/sales/orders/{order_id}", who, expect=200)
        call("GET", "/api/sales/orders/{order_id}/shipments", who, expect=200)
        call("GET", "/api/sales/orders/{order_id}/invoices", who, expect=200)
        call("GET", "/api/sales/orders", who, expect=200)
    call("GET", "/api/sales/orders", "seller", params={"sellerId": "me"}, expect=200)
    call("GET", "/api/sales/orders/{order_id}", "buyer", params={"version": 1}, expect=200)
    call("GET", "/api/sales/orders/{order_id}/timeline", "buyer", expect=200)
    call("GET", "/api/sales/orders/{order_id}/payments", "buyer", expect=200)
    call("GET", "/api/sales/orders/{order_id}/payments/{payment_id}", "buyer", expect=200)
    call("GET", "/api/sales/orders/{order_id}/refunds", "buyer", expect=200)
    call("GET", "/api/sales/orders/{order_id}/payments", "seller", expect=403)
    call("GET", "/api/catalog/bestsellers", expect=200)

    # ECPay, a declined card, a cancellation with and without a refund
    add_to_cart(client, buyer, pid, 1)
    transfer = call("POST", "/api/sales/orders", "buyer", json=order_body("BANK_TRANSFER"))
    url = transfer.json()["paymentUrl"]
    ids["order_id"] = transfer.json()["orderId"]
    wait(client)
    page = call("GET", "/api/sales/orders/{order_id}/pay", params={"sig": url.split("sig=")[1]})
    assert page.status_code == 200 and "CheckMacValue" in page.text
    call("GET", "/api/sales/orders/{order_id}/pay", params={"sig": "forged"}, expect=404)
    call("PUT", "/api/sales/orders/{order_id}/cancel", "buyer", json={"reason": "不要了"})
    notice = {"MerchantID": "3002607", "MerchantTradeNo": "X", "CheckMacValue": "0"}
    assert call("POST", "/api/sales/payments/ecpay/notify", data=notice).text.startswith("0|")
    for number, status in (("4000000000000002", 422), (CARD["number"], 200)):
        add_to_cart(client, buyer, pid, 1)
        order = call("POST", "/api/sales/orders", "buyer", json=order_body()).json()
        ids["order_id"] = order["orderId"]
        attempt = {**card, "paymentData": {"cardDetails": {**CARD, "number": number}}}
        attempt["amount"] = order["total"]
        call("POST", "/api/sales/orders/{order_id}/payments", "buyer", json=attempt, expect=status)
    call(
        "PUT", "/api/sales/orders/{order_id}/cancel", "buyer", json={"reason": "不要了"}, expect=200
    )
    add_to_cart(client, buyer, pid, 1)
    ids["order_id"] = call("POST", "/api/sales/orders", "buyer", json=order_body()).json()[
        "orderId"
    ]
    call("PUT", "/api/sales/orders/{order_id}/status", "admin", json={"status": "PAID"}, expect=200)
    call("DELETE", "/api/cart/items/{product_id}", "buyer", expect=404)
    wait(client)
    ids["notification_id"] = call("GET", "/api/notifications", "buyer").json()["notifications"][0][
        "notificationId"
    ]
    call("POST", "/api/notifications/{notification_id}/read", "buyer", expect=200)

    for action in ("delist", "relist"):
        call("POST", f"/api/catalog/products/{{product_id}}/{action}", "seller", expect=200)
    call("POST", "/api/catalog/products/{product_id}/suspend", "admin", json={"reason": "檢舉"})
    call("POST", "/api/catalog/products/{product_id}/reinstate", "admin", expect=200)
    call("DELETE", "/api/catalog/products/{product_id}", "seller", expect=204)
    applicant = verified_user(client)
    shop.people["applicant"] = applicant
    application = {"shopName": "小店", "description": "手作"}
    call("POST", "/api/users/me/seller-application", "applicant", json=application, expect=202)
    ids["user_id"] = applicant.user_id
    call("POST", "/api/admin/sellers/{user_id}/approve", "admin", expect=200)
    ids["seller_id"] = owner.user_id
    call("POST", "/api/sellers/{seller_id}/reports", "buyer", json={"reason": "假貨"}, expect=201)
    ids["user_id"] = owner.user_id
    call("POST", "/api/admin/sellers/{user_id}/restore-listing", "admin", expect=409)
    ids["user_id"] = applicant.user_id
    call("PUT", "/api/users/{user_id}", "admin", json={"status": "disabled"}, expect=200)
    call("DELETE", "/api/users/{user_id}", "admin", expect=204)
    call("DELETE", "/api/users/me/addresses/{address_id}", "buyer", expect=204)
    call("POST", "/api/auth/logout", "buyer", expect=204)
    call("GET", "/api/users/me", "buyer", expect=401)
    assert not shop.failures, "\n".join(shop.failures)


def order_body(method: str = "CREDIT_CARD", **extra: Any) -> dict[str, Any]:
    return {
        "shippingAddress": ADDRESS,
        "billingAddressSameAsShipping": True,
        "paymentMethod": method,
        "shippingMethod": "STANDARD",
        **extra,
    }


# --- every operation, generated cases -------------------------------------------------------
#: No 5xx but the documented 503s (schemathesis' not_a_server_error refuses those too).
CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def seed(shop: Shop) -> None:
    """Objects for the generated cases to hit: a category, a product with stock, orders (one
    delivered with a shipment, an invoice and a refund; one just placed), a coupon..."""
    client, ids = shop.client, shop.ids
    boss, owner, buyer = (shop.people[k] for k in ("admin", "seller", "buyer"))
    assert boss is not None and owner is not None and buyer is not None
    ids["category_id"] = category(client, boss, "茶葉")
    product = {
        "name": "阿里山高山烏龍茶",
        "description": "清香回甘",
        "categoryId": ids["category_id"],
        "price": {"value": 680, "currency": "TWD"},
    }
    ids["product_id"] = pid = shop.call(
        "POST", "/api/catalog/products", "seller", json=product, expect=201
    ).json()["productId"]
    depot = warehouse(client, boss)
    supplier = {"name": "阿里山茶葉合作社"}
    ids["supplier_id"] = shop.call(
        "POST", "/api/inventory/suppliers", "admin", json=supplier, expect=201
    ).json()["supplierId"]
    receipt = {"productId": pid, "warehouseId": depot, "quantity": 500}
    shop.call("POST", "/api/inventory/receipts", "seller", json=receipt, expect=201)
    coupon = {"code": "TAIPEI100", "type": "FIXED", "value": 100}
    shop.call("POST", "/api/coupons", "admin", json=coupon, expect=201)
    ids["code"] = "TAIPEI100"
    ids["address_id"] = shop.call(
        "POST", "/api/users/me/addresses", "buyer", json=ADDRESS, expect=201
    ).json()["addressId"]
    add_to_cart(client, buyer, pid, 2)
    done = checkout(client, buyer).json()
    ids["order_id"] = oid = done["orderId"]
    card = {"paymentMethod": "CREDIT_CARD", "paymentData": {"cardDetails": CARD}}
    ids["payment_id"] = shop.call(
        "POST",
        "/api/sales/orders/{order_id}/payments",
        "buyer",
        json={**card, "amount": done["total"]},
        expect=200,
    ).json()["paymentId"]
    shop.call("PUT", "/api/sales/orders/{order_id}/process", "seller", json={}, expect=200)
    parcel = {"carrier": "HCT", "trackingNumber": "HCT0001"}
    ids["shipment_id"] = shop.call(
        "POST", "/api/sales/orders/{order_id}/shipments", "seller", json=parcel, expect=201
    ).json()["shipmentId"]
    ids["delivered_order"] = oid
    add_to_cart(client, buyer, pid, 1)
    ids["open_order"] = checkout(client, buyer).json()["orderId"]
    ids["seller_id"] = owner.user_id
    victim = verified_user(client)
    ids["user_id"] = victim.user_id
    wait(client)
    ids["notification_id"] = shop.call("GET", "/api/notifications", "seller").json()[
        "notifications"
    ][0]["notificationId"]
    for who in ("admin", "seller", "buyer"):  # sessions of their own for POST /api/auth/logout
        user = shop.people[who]
        assert user is not None
        shop.spare[who] = login(
            client, User(user.user_id, user.email, user.username, user.password)
        )


def known_values(shop: Shop, operation: Any) -> tuple[dict[str, str], dict[str, str]]:
    """Path and query values naming real objects, for the parameters this operation has."""
    ids = dict(shop.ids)
    ids["order_id"] = ids["delivered_order"] if operation.method == "get" else ids["open_order"]
    path = {p.name: ids[p.name] for p in operation.path_parameters if p.name in ids}
    query = {}
    for p in operation.query:
        if p.name in ("productId", "productIds"):
            query[p.name] = ids["product_id"]
        elif p.name == "categoryId":
            query[p.name] = ids["category_id"]
    return path, query


def send(shop: Shop, case: Any, who: str) -> Any:
    headers: dict[str, str] = {}
    people = shop.spare if case.path == "/api/auth/logout" else shop.people
    user = people.get(who)
    if user is not None:
        headers.update(user.auth)
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
    # A generated header may hold any text: send it as UTF-8 bytes, as a raw client could.
    sent = {
        k: v.encode() if isinstance(v, str) and not v.isascii() else v
        for k, v in (kwargs.get("headers") or {}).items()
    }
    request: dict[str, Any] = {"headers": sent, "params": kwargs.get("params")}
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    data = kwargs.get("data")
    if isinstance(data, bytes | str):
        request["content"] = data
    elif data is not None:
        request["data"] = data
    return shop.client.request(kwargs["method"], kwargs["url"], follow_redirects=False, **request)


def exercise(
    shop: Shop, operation: Any, failures: dict[str, str], statuses: dict[str, set[int]]
) -> None:
    """Generated cases for one operation: random, aimed at real objects, and invalid ones."""
    label = f"{operation.method.upper()} {operation.path}"
    path, query = known_values(shop, operation)
    cases = st.one_of(
        operation.as_strategy(),
        operation.as_strategy(path_parameters=path, query=query),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE, path_parameters=path),
    )

    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not RANDOM,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=cases, who=st.sampled_from(["buyer", "seller", "admin", "nobody"]))
    def run(case: Any, who: str) -> None:
        response = send(shop, case, who)
        statuses.setdefault(label, set()).add(response.status_code)
        if response.status_code >= 500 and response.status_code != 503:
            failures.setdefault(label, f"{who}: {response.status_code} {response.text[:500]}")
        try:
            case.validate_response(response, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - reported together below
            failures.setdefault(label, f"{who}: {exc}"[:1500])
        for problem in shop.contract.problems(case.method, case.path, response):
            failures.setdefault(label, f"{who}: {problem}")

    run()


@pytest.mark.slow
def test_every_operation_answers_as_documented(make_client: ClientFactory) -> None:
    """Property-based: generated requests to EVERY operation, as each kind of caller."""
    # Random X-Min-Position values wait for positions never reached: 503 after 20 ms.
    shop = open_shop(make_client, min_position_wait="PT0.02S")
    seed(shop)
    shop.failures.clear()
    schema = schemathesis.openapi.from_dict(shop.contract.document)
    failures: dict[str, str] = {}
    statuses: dict[str, set[int]] = {}
    ran = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()
        operation = result.ok()
        if operation.path.startswith(TEST_ONLY) or operation.path in ENDLESS:
            continue
        ran += 1
        exercise(shop, operation, failures, statuses)
    assert ran > 75
    reached = {label for label, seen in statuses.items() if any(s < 300 for s in seen)}
    assert len(reached) > 30, sorted(statuses)  # the authenticated paths, not only 401s
    assert not failures, "\n\n".join(f"{k}\n{v}" for k, v in sorted(failures.items()))
