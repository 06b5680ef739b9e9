"""Catalog: categories, products (search, listing, editing, status), banned keywords,
price history, price trends and comparisons, best sellers."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, Field

from aggregates.accounts import Account
from aggregates.catalog import Category, Product, clean_description, clean_name
from aggregates.inventory import Inventory
from aggregates.money import money, parse_price
from api.auth import AdminUser, OptionalUser, Principal, SellerUser, current_principal
from api.deps import ContainerDep, PageDep, execute, path_id, reads, run_command, with_position
from api.errors import ApiError
from api.openapi import IDEMPOTENT, documented, examples
from api.responses import (
    BannedKeywords,
    Bestsellers,
    CategoryNode,
    CategoryTree,
    PriceComparison,
    PriceHistory,
    PriceTrend,
    ProductList,
)
from api.responses import Product as ProductView
from api.schemas import MoneyBody, RequestBody
from api.validation import MultilineText, Text, domain_rule, no_banned_keywords
from commands.catalog import (
    CreateCategory,
    CreateProduct,
    DelistProduct,
    ReinstateProduct,
    RelistProduct,
    ReplaceBannedKeywords,
    SuspendProduct,
    UpdateProduct,
)
from queries import catalog as q
from shopledger.bootstrap import Container

router = APIRouter(tags=["catalog"])
READS_CATALOG = [Depends(reads("catalog", "inventory"))]
READS_SALES = [Depends(reads("catalog", "sales_stats"))]


# --- shapes ---------------------------------------------------------------------------------
class CategoryBody(RequestBody):
    model_config = examples(
        {"name": "保養品"}, {"name": "乳液", "parentId": "3f1c2a9e-7b4d-4e8a-9c1f-5d6e7a8b9c0d"}
    )

    name: Text = Field(max_length=1000)
    parent_id: str | None = None


# Length and banned keywords are checked while the body is parsed (all problems at once).
ProductName = Annotated[
    Text, AfterValidator(domain_rule(clean_name)), AfterValidator(no_banned_keywords("name"))
]
ProductDescription = Annotated[
    MultilineText,
    AfterValidator(domain_rule(clean_description)),
    AfterValidator(no_banned_keywords("description")),
]


class ProductBody(RequestBody):
    model_config = examples(
        {
            "name": "阿里山高山烏龍茶 150g",
            "description": "阿里山海拔1500公尺茶園手採，清香回甘。",
            "categoryId": "3f1c2a9e-7b4d-4e8a-9c1f-5d6e7a8b9c0d",
            "price": {"value": 680, "currency": "TWD"},
            "images": ["https://cdn.example.com.tw/products/oolong-150g.jpg"],
            "supplierIds": ["8a7b6c5d-4e3f-4a1b-9c8d-7e6f5a4b3c2d"],
        }
    )

    name: ProductName = Field(max_length=10_000)
    description: ProductDescription = Field(max_length=100_000)
    category_id: str = Field(max_length=64)
    price: MoneyBody
    images: list[str] = Field(default_factory=list, max_length=100)
    supplier_ids: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=100
    )


class ProductPatch(RequestBody):
    model_config = examples({"price": {"value": 599, "currency": "TWD"}}, {"name": "阿里山烏龍茶"})

    name: ProductName | None = Field(default=None, max_length=10_000)
    description: ProductDescription | None = Field(default=None, max_length=100_000)
    category_id: str | None = Field(default=None, max_length=64)
    price: MoneyBody | None = None
    images: list[str] | None = Field(default=None, max_length=100)
    supplier_ids: list[Annotated[str, Field(max_length=64)]] | None = Field(
        default=None, max_length=100
    )


class SuspendBody(RequestBody):
    model_config = examples({"reason": "疑似仿冒品，暫停販售待查"})

    reason: MultilineText = Field(min_length=1, max_length=500)


class KeywordsBody(RequestBody):
    model_config = examples(
        {"keywords": ["仿冒", "盜版", "假貨", "高仿", "counterfeit", "replica"]}
    )

    keywords: list[Annotated[Text, Field(max_length=1000)]] = Field(max_length=10_000)


def category_of(category: Category) -> dict[str, Any]:
    return {
        "categoryId": str(category.id),
        "name": category.name,
        "parentId": category.parent_id,
        "depth": len(category.path),
        "children": [],
    }


def product_of(container: Container, product: Product) -> dict[str, Any]:
    """The product straight from the aggregate a command just changed (plus its seller's shop
    name and available stock, read from their aggregates)."""
    seller: Account = container.load(UUID(product.seller_id))
    try:
        inventory: Inventory = container.load(Inventory.create_id(str(product.id)))
        stock = inventory.available
    except AggregateNotFoundError:
        stock = 0
    application = seller.seller_application if isinstance(seller, Account) else None
    now = container.bus.clock()
    sale = product.sale_at(now)
    return {
        "productId": str(product.id),
        "sellerId": product.seller_id,
        "sellerName": application["shop_name"] if application else None,
        "name": product.name,
        "description": product.description,
        "categoryId": product.category_id,
        "price": money(product.price_at(now)),
        "regularPrice": money(product.price),
        "salePrice": None if sale is None else money(sale.price),
        "saleEndsAt": None if sale is None else sale.until.astimezone(UTC).isoformat(),
        "images": list(product.images),
        "supplierIds": list(product.supplier_ids),
        "status": product.status,
        "stock": stock,
        "createdAt": product.created_at.astimezone(UTC).isoformat(),
        "updatedAt": product.updated_at.astimezone(UTC).isoformat(),
        "version": product.version,
        **q.review_view(
            product.review_status,
            product.review_reason,
            product.pending_changes,
            product.submitted_at,
        ),
    }


def canonical_id(raw: str | None) -> str | None:
    """An id as stored (lower-case hyphenated UUID); anything else is kept and matches nothing."""
    if raw is None:
        return None
    try:
        return str(UUID(raw))
    except ValueError:
        return raw


def may_see_hidden(principal: Principal | None, seller_id: str) -> bool:
    return principal is not None and (
        principal.account_id == seller_id or principal.has_role("admin")
    )


#: The seller's business: shown to the seller and admins only.
PRIVATE_KEYS = frozenset({"supplierIds", *q.REVIEW_KEYS})


def for_caller(view: dict[str, Any], principal: Principal | None) -> dict[str, Any]:
    """Supplier links and moderation state are shown to the product's seller and admins only."""
    if not may_see_hidden(principal, view["sellerId"]):
        view = {k: v for k, v in view.items() if k not in PRIVATE_KEYS}
    return view


def visible_product(
    container: Container, product_id: str, principal: Principal | None
) -> dict[str, Any]:
    """A product from the read model, if the caller may see it: listed products are public;
    delisted, suspended or waiting (not yet approved) ones only to their seller and admins
    (404 to anyone else)."""
    view = q.get_product(container.engine, product_id, container.bus.clock())
    if view is None or (not view["listed"] and not may_see_hidden(principal, view["sellerId"])):
        raise ApiError(404, "PRODUCT_NOT_FOUND", "product not found", {"productId": product_id})
    return for_caller(view, principal)


def _bad_query(exc: q.QueryError) -> ApiError:
    return ApiError(400, "VALIDATION_ERROR", str(exc))


def _now() -> datetime:
    return datetime.now(UTC)


# --- categories -----------------------------------------------------------------------------
@router.get(
    "/api/catalog/categories",
    dependencies=[Depends(reads("catalog"))],
    response_model=None,
    responses=documented(CategoryTree),
)
def categories(container: ContainerDep) -> dict[str, Any]:
    """The category tree, roots first, children nested to any depth."""
    return q.category_tree(container.engine)


@router.post(
    "/api/catalog/categories",
    status_code=201,
    response_model=None,
    responses=documented(CategoryNode, status=201, errors={409: "CONFLICT"}),
    openapi_extra=IDEMPOTENT,
)
def create_category(
    body: CategoryBody, _: AdminUser, request: Request, container: ContainerDep
) -> Response:
    """Create a category, at the root or under a parent (admin)."""
    command = CreateCategory(uuid4(), body.name, body.parent_id)
    return run_command(request, container, command, lambda c: (201, category_of(c)), body)


# --- products -------------------------------------------------------------------------------
@router.get(
    "/api/catalog/products",
    dependencies=READS_CATALOG,
    response_model=None,
    responses=documented(ProductList, errors={403: "FORBIDDEN"}),
)
def search(
    container: ContainerDep,
    page: PageDep,
    principal: OptionalUser,
    q_: Annotated[str | None, Query(alias="q", max_length=200)] = None,
    category_id: Annotated[str | None, Query(alias="categoryId", max_length=64)] = None,
    seller_id: Annotated[str | None, Query(alias="sellerId", max_length=64)] = None,
    min_price: Annotated[Decimal | None, Query(alias="minPrice", ge=0, allow_inf_nan=False)] = None,
    max_price: Annotated[Decimal | None, Query(alias="maxPrice", ge=0, allow_inf_nan=False)] = None,
    sort: Annotated[
        str | None, Query(max_length=20, json_schema_extra={"enum": list(q.SORTS)})
    ] = None,
    status: Annotated[Literal["active", "delisted", "suspended", "all"] | None, Query()] = None,
) -> dict[str, Any]:
    """Search listed products.

    Keywords (Chinese and English), category with its subcategories, seller, price range;
    sort by relevance, price, -price, newest, bestselling or rating (best average
    product score first, unrated last). Price bounds and price sorts use the price paid now
    (a sale price in force, else the regular price).

    ``sellerId=me`` lists the caller's own products; with ``status`` a seller (for its own
    products) or an admin also sees delisted and suspended ones."""
    if seller_id == "me":
        if principal is None:
            raise ApiError(401, "UNAUTHORIZED", "sellerId=me needs a signed-in seller")
        seller_id = principal.account_id
    seller_id, category_id = canonical_id(seller_id), canonical_id(category_id)
    statuses: tuple[str, ...] | None = None
    if status is not None:
        allowed = principal is not None and (
            principal.has_role("admin")
            or (seller_id is not None and seller_id == principal.account_id)
        )
        if not allowed:
            raise ApiError(
                403, "FORBIDDEN", "status is only for admins, or sellers listing their own products"
            )
        statuses = ("active", "delisted", "suspended") if status == "all" else (status,)
    criteria = q.ProductSearch(q_, category_id, seller_id, min_price, max_price, sort, statuses)
    try:
        found = q.search_products(container.engine, criteria, page, container.bus.clock())
    except q.QueryError as exc:
        raise _bad_query(exc) from None
    return {**found, "products": [for_caller(p, principal) for p in found["products"]]}


@router.get(
    "/api/catalog/products/{product_id}",
    dependencies=READS_CATALOG,
    response_model=None,
    responses=documented(ProductView, errors={404: "PRODUCT_NOT_FOUND"}),
)
def get_product(
    product_id: str, container: ContainerDep, principal: OptionalUser
) -> dict[str, Any]:
    """One product (delisted and suspended ones only for their seller and admins)."""
    return visible_product(
        container, str(path_id(product_id, "PRODUCT_NOT_FOUND", "product")), principal
    )


@router.post(
    "/api/catalog/products",
    status_code=201,
    response_model=None,
    responses=documented(ProductView, status=201, errors={403: "FORBIDDEN"}),
    openapi_extra=IDEMPOTENT,
)
def create_product(
    body: ProductBody, principal: SellerUser, request: Request, container: ContainerDep
) -> Response:
    """List a new product (approved sellers with listing rights).

    With SHOPLEDGER_PRODUCT_REVIEW=on it waits for an admin's approval (reviewStatus
    pending) and is public only once approved."""
    command = CreateProduct(
        product_id=uuid4(),
        seller_id=principal.account_id,
        name=body.name,
        description=body.description,
        category_id=body.category_id,
        price=parse_price(body.price.value, body.price.currency),
        images=tuple(body.images),
        supplier_ids=tuple(body.supplier_ids),
        review=container.settings.product_review,
    )
    return run_command(request, container, command, lambda p: (201, product_of(container, p)), body)


@router.put(
    "/api/catalog/products/{product_id}",
    response_model=None,
    responses=documented(
        ProductView, errors={403: "FORBIDDEN", 404: "PRODUCT_NOT_FOUND", 409: "CONFLICT"}
    ),
)
def update_product(
    product_id: str,
    body: ProductPatch,
    principal: SellerUser,
    request: Request,
    container: ContainerDep,
) -> Response:
    """Change a product's fields (its seller).

    A price change is recorded in the price history. With SHOPLEDGER_PRODUCT_REVIEW=on a
    change of name, description, category or images waits for an admin (pendingChanges);
    the public keeps seeing the approved version meanwhile."""
    fields = body.model_dump(exclude_unset=True)
    if not fields:
        raise ApiError(400, "VALIDATION_ERROR", "nothing to change")
    command = UpdateProduct(
        product_id=path_id(product_id, "PRODUCT_NOT_FOUND", "product"),
        actor_id=principal.account_id,
        name=body.name,
        description=body.description,
        category_id=body.category_id,
        price=None if body.price is None else parse_price(body.price.value, body.price.currency),
        images=None if body.images is None else tuple(body.images),
        supplier_ids=None if body.supplier_ids is None else tuple(body.supplier_ids),
        review=container.settings.product_review,
    )
    outcome = execute(request, container, command)
    return with_position(JSONResponse(product_of(container, outcome.result)), outcome.position)


def _status_change(request: Request, container: Container, command: Any) -> Response:
    outcome = execute(request, container, command)
    return with_position(JSONResponse(product_of(container, outcome.result)), outcome.position)


def _seller_or_admin(principal: Principal) -> bool:
    if principal.has_role("admin"):
        return True
    if not principal.has_role("seller"):
        raise ApiError(403, "FORBIDDEN", "this needs the role seller or admin")
    return False


@router.post(
    "/api/catalog/products/{product_id}/delist",
    response_model=None,
    responses=documented(
        ProductView, errors={403: "FORBIDDEN", 404: "PRODUCT_NOT_FOUND", 409: "CONFLICT"}
    ),
)
def delist(
    product_id: str,
    principal: Annotated[Principal, Depends(current_principal)],
    request: Request,
    container: ContainerDep,
) -> Response:
    """Take a product off sale (its seller, or an admin)."""
    is_admin = _seller_or_admin(principal)
    return _status_change(
        request,
        container,
        DelistProduct(
            path_id(product_id, "PRODUCT_NOT_FOUND", "product"), principal.account_id, is_admin
        ),
    )


@router.delete(
    "/api/catalog/products/{product_id}",
    status_code=204,
    response_model=None,
    responses=documented(
        status=204, errors={403: "FORBIDDEN", 404: "PRODUCT_NOT_FOUND", 409: "CONFLICT"}
    ),
)
def delete_product(
    product_id: str,
    principal: Annotated[Principal, Depends(current_principal)],
    request: Request,
    container: ContainerDep,
) -> Response:
    """Delist a product (same as POST .../delist).

    Products are never erased: their history stays."""
    is_admin = _seller_or_admin(principal)
    outcome = execute(
        request,
        container,
        DelistProduct(
            path_id(product_id, "PRODUCT_NOT_FOUND", "product"), principal.account_id, is_admin
        ),
    )
    return with_position(Response(status_code=204), outcome.position)


@router.post(
    "/api/catalog/products/{product_id}/relist",
    response_model=None,
    responses=documented(
        ProductView, errors={403: "FORBIDDEN", 404: "PRODUCT_NOT_FOUND", 409: "CONFLICT"}
    ),
)
def relist(
    product_id: str, principal: SellerUser, request: Request, container: ContainerDep
) -> Response:
    """Put a delisted product back on sale (its seller, with listing rights)."""
    return _status_change(
        request,
        container,
        RelistProduct(path_id(product_id, "PRODUCT_NOT_FOUND", "product"), principal.account_id),
    )


@router.post(
    "/api/catalog/products/{product_id}/suspend",
    response_model=None,
    responses=documented(ProductView, errors={404: "PRODUCT_NOT_FOUND", 409: "CONFLICT"}),
)
def suspend(
    product_id: str, body: SuspendBody, _: AdminUser, request: Request, container: ContainerDep
) -> Response:
    """Suspend a product (admin moderation).

    It is hidden, and its seller cannot relist it."""
    return _status_change(
        request,
        container,
        SuspendProduct(path_id(product_id, "PRODUCT_NOT_FOUND", "product"), body.reason),
    )


@router.post(
    "/api/catalog/products/{product_id}/reinstate",
    response_model=None,
    responses=documented(ProductView, errors={404: "PRODUCT_NOT_FOUND", 409: "CONFLICT"}),
)
def reinstate(product_id: str, _: AdminUser, request: Request, container: ContainerDep) -> Response:
    """Lift an admin suspension (admin).

    The product returns to the status it had before."""
    return _status_change(
        request, container, ReinstateProduct(path_id(product_id, "PRODUCT_NOT_FOUND", "product"))
    )


# --- banned keywords ------------------------------------------------------------------------
@router.get(
    "/api/catalog/banned-keywords",
    dependencies=[Depends(reads("catalog"))],
    response_model=None,
    responses=documented(BannedKeywords),
)
def get_banned_keywords(container: ContainerDep) -> dict[str, Any]:
    """Keywords no product name or description may contain.

    Checked case-insensitively."""
    return {"keywords": q.banned_keywords(container.engine)}


@router.put(
    "/api/catalog/banned-keywords", response_model=None, responses=documented(BannedKeywords)
)
def put_banned_keywords(
    body: KeywordsBody, _: AdminUser, request: Request, container: ContainerDep
) -> Response:
    """Replace the banned keyword list (admin)."""
    outcome = execute(request, container, ReplaceBannedKeywords(tuple(body.keywords)))
    return with_position(JSONResponse({"keywords": outcome.result}), outcome.position)


# --- prices ---------------------------------------------------------------------------------
@router.get(
    "/api/catalog/products/{product_id}/price-history",
    dependencies=READS_CATALOG,
    response_model=None,
    responses=documented(PriceHistory, errors={404: "PRODUCT_NOT_FOUND"}),
)
def price_history(
    product_id: str,
    container: ContainerDep,
    principal: OptionalUser,
    from_date: Annotated[date | None, Query(alias="fromDate")] = None,
    to_date: Annotated[date | None, Query(alias="toDate")] = None,
) -> dict[str, Any]:
    """Every price the product had, with when and by whom.

    A point for each regular price change and each sale window starting or ending: ``price``
    is what buyers paid from then on, beside the regular and sale price. fromDate and toDate
    are Asia/Taipei days."""
    view = visible_product(
        container, str(path_id(product_id, "PRODUCT_NOT_FOUND", "product")), principal
    )
    try:
        return q.price_history(
            container.engine, view["productId"], from_date, to_date, container.bus.clock()
        )
    except q.QueryError as exc:
        raise _bad_query(exc) from None


@router.get(
    "/api/catalog/categories/{category_id}/price-trend",
    dependencies=[Depends(reads("catalog"))],
    response_model=None,
    responses=documented(PriceTrend, errors={404: "NOT_FOUND"}),
)
def price_trend(
    category_id: str,
    container: ContainerDep,
    from_date: Annotated[date | None, Query(alias="fromDate")] = None,
    to_date: Annotated[date | None, Query(alias="toDate")] = None,
    group_by: Annotated[Literal["DAY", "WEEK", "MONTH"], Query(alias="groupBy")] = "DAY",
) -> dict[str, Any]:
    """A category's price trend per DAY, WEEK or MONTH.

    Average, min and max price and number of listed products of the category (subcategories
    included), as at the end of each period; a product on sale then counts at its sale price."""
    try:
        trend = q.price_trend(
            container.engine, canonical_id(category_id) or "", from_date, to_date, group_by, _now()
        )
    except q.QueryError as exc:
        raise _bad_query(exc) from None
    if trend is None:
        raise ApiError(404, "NOT_FOUND", "category not found", {"categoryId": category_id})
    return trend


@router.get(
    "/api/catalog/price-trends/compare",
    dependencies=READS_CATALOG,
    response_model=None,
    responses=documented(PriceComparison, errors={404: "PRODUCT_NOT_FOUND"}),
)
def compare(
    container: ContainerDep,
    principal: OptionalUser,
    product_ids: Annotated[str, Query(alias="productIds", max_length=1000)],
    from_date: Annotated[date | None, Query(alias="fromDate")] = None,
    to_date: Annotated[date | None, Query(alias="toDate")] = None,
) -> dict[str, Any]:
    """Compare the prices of up to 10 products over a period.

    A single product is allowed too."""
    ids = list(dict.fromkeys(i.strip() for i in product_ids.split(",") if i.strip()))
    if not 1 <= len(ids) <= q.MAX_COMPARE:
        raise ApiError(400, "VALIDATION_ERROR", f"productIds: name 1 to {q.MAX_COMPARE} products")
    products = [
        visible_product(container, str(path_id(i, "PRODUCT_NOT_FOUND", "product")), principal)
        for i in ids
    ]
    try:
        return q.compare_prices(container.engine, products, from_date, to_date, _now())
    except q.QueryError as exc:
        raise _bad_query(exc) from None


@router.get(
    "/api/catalog/bestsellers",
    dependencies=READS_SALES,
    response_model=None,
    responses=documented(Bestsellers),
)
def bestsellers(
    container: ContainerDep,
    category_id: Annotated[str | None, Query(alias="categoryId", max_length=64)] = None,
    days: Annotated[int, Query(ge=1, le=365)] = 7,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict[str, Any]:
    """Best sellers (熱銷排行榜).

    Products ranked by units sold in paid orders over the last ``days`` days."""
    return q.bestsellers(container.engine, canonical_id(category_id), days, limit, _now())
