"""Customer records (seeds/000 顧客管理, admin only): tags, private notes, order history and
spend. Nothing here is ever shown to the customer."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field

from aggregates.customers import CustomerRecord
from api.auth import AdminUser
from api.deps import ContainerDep, PageDep, execute, path_id, reads, run_command, with_position
from api.errors import ApiError
from api.openapi import IDEMPOTENT, documented, examples
from api.responses import CustomerNote, CustomerNoteList, CustomerOrders, CustomerTags
from api.schemas import RequestBody
from api.validation import MultilineText, Text
from commands.customers import AddCustomerNote, TagCustomer, UntagCustomer
from queries import accounts, customers
from shopledger.bootstrap import Container

router = APIRouter(tags=["users"])


class TagBody(RequestBody):
    model_config = examples({"tag": "VIP"}, {"tag": "wholesale"}, {"tag": "常客"})

    tag: Text = Field(min_length=1, max_length=100)


class NoteBody(RequestBody):
    model_config = examples({"text": "偏好週末下午收貨；曾反映包裝破損，已補寄。"})

    text: MultilineText = Field(min_length=1, max_length=10_000)


def _user(container: Container, user_id: str) -> str:
    """A user's id, if the user exists (404 otherwise)."""
    uid = str(path_id(user_id, "NOT_FOUND", "user"))
    if accounts.get_user(container.engine, uid) is None:
        raise ApiError(404, "NOT_FOUND", "user not found")
    return uid


def _tags(record: CustomerRecord) -> dict[str, Any]:
    return {"userId": record.user_id, "tags": list(record.tags)}


@router.post(
    "/api/users/{user_id}/tags",
    status_code=201,
    response_model=None,
    responses=documented(CustomerTags, status=201, errors={404: "NOT_FOUND", 409: "CONFLICT"}),
    openapi_extra=IDEMPOTENT,
)
def tag_user(
    user_id: str, body: TagBody, admin: AdminUser, request: Request, container: ContainerDep
) -> Response:
    """Tag a customer (admin): VIP, wholesale or any free-text tag.

    1-30 letters, digits, spaces or ``- _ . & +``; case-insensitive (a second VIP is 409);
    at most 20 tags per user."""
    command = TagCustomer(path_id(user_id, "NOT_FOUND", "user"), body.tag, admin.account_id)
    return run_command(request, container, command, lambda r: (201, _tags(r)), body)


@router.delete(
    "/api/users/{user_id}/tags/{tag}",
    status_code=204,
    response_model=None,
    responses=documented(status=204, errors={400: "VALIDATION_ERROR", 404: "NOT_FOUND"}),
)
def untag_user(
    user_id: str, tag: str, admin: AdminUser, request: Request, container: ContainerDep
) -> Response:
    """Remove a customer tag (admin; case-insensitive)."""
    command = UntagCustomer(path_id(user_id, "NOT_FOUND", "user"), tag, admin.account_id)
    outcome = execute(request, container, command)
    return with_position(Response(status_code=204), outcome.position)


@router.post(
    "/api/users/{user_id}/notes",
    status_code=201,
    response_model=None,
    responses=documented(CustomerNote, status=201, errors={404: "NOT_FOUND"}),
    openapi_extra=IDEMPOTENT,
)
def add_note(
    user_id: str, body: NoteBody, admin: AdminUser, request: Request, container: ContainerDep
) -> Response:
    """Add a private note on a customer (admin; never shown to the customer)."""
    uid = path_id(user_id, "NOT_FOUND", "user")
    command = AddCustomerNote(uid, str(uuid4()), body.text, admin.account_id)

    def respond(note: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 201, {
            "noteId": note["note_id"],
            "userId": str(uid),
            "text": note["text"],
            "authorId": note["author_id"],
            "createdAt": note["at"].isoformat(),
        }

    return run_command(request, container, command, respond, body)


@router.get(
    "/api/users/{user_id}/notes",
    dependencies=[Depends(reads("accounts", "customers"))],
    response_model=None,
    responses=documented(CustomerNoteList, errors={404: "NOT_FOUND"}),
)
def list_notes(
    user_id: str, _: AdminUser, container: ContainerDep, page: PageDep
) -> dict[str, Any]:
    """An admin's private notes on a customer, newest first (admin)."""
    return customers.notes(container.engine, _user(container, user_id), page)


@router.get(
    "/api/users/{user_id}/orders",
    dependencies=[Depends(reads("accounts", "orders"))],
    response_model=None,
    responses=documented(CustomerOrders, errors={404: "NOT_FOUND"}),
)
def customer_orders(
    user_id: str, _: AdminUser, container: ContainerDep, page: PageDep
) -> dict[str, Any]:
    """A customer's order history and spend (admin).

    Orders newest first; spend over all of them: total paid, total refunded, net."""
    return customers.customer_orders(container.engine, _user(container, user_id), page)
