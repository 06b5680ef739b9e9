"""Catalog moderation (admin): renaming, moving and deleting categories; the product review
queue (SHOPLEDGER_PRODUCT_REVIEW=on) with approval and rejection."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field

from api.auth import AdminUser
from api.deps import ContainerDep, PageDep, execute, path_id, reads, with_position
from api.errors import ApiError
from api.openapi import documented, examples
from api.responses import CategoryNode, ProductList
from api.responses import Product as ProductView
from api.routes.catalog import category_of, product_of
from api.schemas import RequestBody
from api.validation import MultilineText, Text
from commands.moderation import KEEP, ApproveProduct, ChangeCategory, DeleteCategory, RejectProduct
from queries import catalog as q

router = APIRouter(tags=["catalog"])


class CategoryChange(RequestBody):
    model_config = examples(
        {"name": "保養品與彩妝"},
        {"parentId": "3f1c2a9e-7b4d-4e8a-9c1f-5d6e7a8b9c0d"},
        {"parentId": None},
    )

    name: Text | None = Field(default=None, max_length=1000)
    parent_id: str | None = Field(default=None, max_length=64)


class RejectBody(RequestBody):
    model_config = examples({"reason": "商品圖片與描述不符，請更新後重新送審"})

    reason: MultilineText = Field(min_length=1, max_length=1000)


@router.put(
    "/api/catalog/categories/{category_id}",
    response_model=None,
    responses=documented(CategoryNode, errors={404: "NOT_FOUND", 409: "CONFLICT"}),
)
def change_category(
    category_id: str,
    body: CategoryChange,
    _: AdminUser,
    request: Request,
    container: ContainerDep,
) -> Response:
    """Rename and/or move a category with its subcategories (admin).

    ``parentId: null`` moves it to the root; absent keeps it where it is. Moving a category
    under itself or one of its subcategories is 409; a sibling of the same name is 409."""
    given = body.model_fields_set
    if not given:
        raise ApiError(400, "VALIDATION_ERROR", "nothing to change")
    command = ChangeCategory(
        path_id(category_id, "NOT_FOUND", "category"),
        name=body.name if "name" in given else None,
        parent_id=body.parent_id if "parent_id" in given else KEEP,
    )
    outcome = execute(request, container, command)
    return with_position(JSONResponse(category_of(outcome.result)), outcome.position)


@router.delete(
    "/api/catalog/categories/{category_id}",
    status_code=204,
    dependencies=[Depends(reads("catalog"))],
    response_model=None,
    responses=documented(status=204, errors={404: "NOT_FOUND", 409: "CONFLICT"}),
)
def delete_category(
    category_id: str, _: AdminUser, request: Request, container: ContainerDep
) -> Response:
    """Delete an empty category (admin).

    One with subcategories or products (in any status) is 409."""
    cid = path_id(category_id, "NOT_FOUND", "category")
    has_products = q.products_in_category(container.engine, str(cid))
    outcome = execute(request, container, DeleteCategory(cid, has_products))
    return with_position(Response(status_code=204), outcome.position)


@router.get(
    "/api/catalog/review-queue",
    dependencies=[Depends(reads("catalog", "inventory"))],
    response_model=None,
    responses=documented(ProductList),
)
def review_queue(_: AdminUser, container: ContainerDep, page: PageDep) -> dict[str, Any]:
    """Products waiting for review, oldest submission first (admin).

    New products, and edits of live products (their pendingChanges)."""
    return q.review_queue(container.engine, page)


@router.post(
    "/api/catalog/products/{product_id}/approve",
    response_model=None,
    responses=documented(ProductView, errors={404: "PRODUCT_NOT_FOUND", 409: "CONFLICT"}),
)
def approve_product(
    product_id: str, _: AdminUser, request: Request, container: ContainerDep
) -> Response:
    """Approve a product waiting for review (admin).

    A new product goes public; an edit's pending values replace the live ones. Not waiting:
    409."""
    command = ApproveProduct(path_id(product_id, "PRODUCT_NOT_FOUND", "product"))
    outcome = execute(request, container, command)
    return with_position(JSONResponse(product_of(container, outcome.result)), outcome.position)


@router.post(
    "/api/catalog/products/{product_id}/reject",
    response_model=None,
    responses=documented(ProductView, errors={404: "PRODUCT_NOT_FOUND", 409: "CONFLICT"}),
)
def reject_product(
    product_id: str, body: RejectBody, _: AdminUser, request: Request, container: ContainerDep
) -> Response:
    """Reject a product waiting for review, with a reason the seller sees (admin).

    A live product keeps its live version; a new one stays hidden until the seller edits it
    (which submits it again). Not waiting: 409."""
    command = RejectProduct(
        path_id(product_id, "PRODUCT_NOT_FOUND", "product"), body.reason.strip()
    )
    outcome = execute(request, container, command)
    return with_position(JSONResponse(product_of(container, outcome.result)), outcome.position)
