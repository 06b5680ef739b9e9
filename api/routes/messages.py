"""Messages between users: send, list conversations, read one (which marks it read)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, Field

from aggregates.messages import TEXT_MAX, Conversation, clean_text
from api.auth import CurrentUser
from api.deps import ContainerDep, PageDep, execute, path_id, reads, run_command, with_position
from api.errors import ApiError
from api.openapi import IDEMPOTENT, documented, examples
from api.ratelimit import Limit, enforce
from api.responses import ConversationList, ConversationPage, MessageSent
from api.schemas import RequestBody
from api.validation import MultilineText, domain_rule
from commands.messages import MarkConversationRead, SendMessage
from queries import messages as q
from queries.common import iso

router = APIRouter(tags=["messages"])
READS_MESSAGES = [Depends(reads("messages", "accounts"))]


class MessageBody(RequestBody):
    model_config = examples(
        {"toUserId": "94b3b01c-566a-589f-9af0-eddafb571044", "text": "請問這款有現貨嗎？"},
        {
            "toUserId": "c6b42de1-d85c-5ce3-868e-baf29d30d14a",
            "text": "您的訂單已出貨，請留意簡訊。",
            "orderId": "e09ac7c6-6759-57f1-9f49-538b3f3d775d",
        },
    )
    to_user_id: str = Field(min_length=1, max_length=64)
    text: Annotated[
        MultilineText,
        Field(min_length=1, max_length=TEXT_MAX),
        AfterValidator(domain_rule(clean_text)),
    ]
    order_id: str | None = Field(default=None, min_length=1, max_length=64)
    product_id: str | None = Field(default=None, min_length=1, max_length=64)


@router.post(
    "/api/messages",
    status_code=201,
    response_model=None,
    responses=documented(
        MessageSent,
        status=201,
        errors={
            400: "VALIDATION_ERROR",
            403: ("FORBIDDEN", "ACCOUNT_DISABLED"),
            404: "USER_NOT_FOUND",
            409: "CONFLICT",
            429: "RATE_LIMITED",
        },
    ),
    openapi_extra=IDEMPOTENT,
)
def send(
    body: MessageBody, principal: CurrentUser, request: Request, container: ContainerDep
) -> Response:
    """Send a message; the conversation with that user is opened on the first one.

    A buyer may write to sellers and admins, a seller to a buyer who ordered from it (naming
    the order the first time), admins to anyone; once a conversation exists both sides may
    write. The receiver gets MESSAGE_RECEIVED. At most SHOPLEDGER_MESSAGE_RATE_LIMIT (30)
    messages a minute per sender: 429 RATE_LIMITED with Retry-After."""
    limit = Limit("messages", container.settings.message_rate_limit, 60)
    enforce(request.app.state.rate_limiter, limit, principal.account_id)
    command = SendMessage(
        sender_id=principal.account_id,
        to_user_id=body.to_user_id,
        text=body.text,
        order_id=body.order_id,
        product_id=body.product_id,
    )

    def answer(result: tuple[Conversation, int]) -> tuple[int, dict[str, Any]]:
        conversation, seq = result
        return 201, {
            "messageId": f"{conversation.id}-{seq}",
            "conversationId": str(conversation.id),
            "senderId": principal.account_id,
            "receiverId": conversation.other(principal.account_id),
            "text": clean_text(body.text),
            "orderId": body.order_id,
            "productId": body.product_id,
            "createdAt": iso(conversation.modified_on),
        }

    return run_command(request, container, command, answer, body)


@router.get(
    "/api/messages/conversations",
    dependencies=READS_MESSAGES,
    response_model=None,
    responses=documented(ConversationList),
)
def conversations(principal: CurrentUser, container: ContainerDep, page: PageDep) -> dict[str, Any]:
    """Your conversations, the one with the newest message first: the other party, the last
    message and how many messages you have not read."""
    return q.list_conversations(container.engine, principal.account_id, page)


@router.get(
    "/api/messages/conversations/{conversation_id}",
    dependencies=READS_MESSAGES,
    response_model=None,
    responses=documented(ConversationPage, errors={404: "CONVERSATION_NOT_FOUND"}),
)
def conversation(
    conversation_id: str,
    principal: CurrentUser,
    request: Request,
    container: ContainerDep,
    page: PageDep,
    mark_read: Annotated[bool, Query(alias="markRead")] = True,
) -> Response:
    """A page of one conversation, oldest message first (participants only; 404 otherwise).

    Reading it marks every message in it read (``markRead=false`` leaves them unread)."""
    cid = path_id(conversation_id, "CONVERSATION_NOT_FOUND", "conversation")
    found = q.conversation(container.engine, str(cid), principal.account_id, page)
    if found is None:
        raise ApiError(
            404,
            "CONVERSATION_NOT_FOUND",
            "conversation not found",
            {"conversationId": conversation_id},
        )
    position = None
    if mark_read and found["unreadCount"] > 0:
        outcome = execute(request, container, MarkConversationRead(cid, principal.account_id))
        position = outcome.position
        found["unreadCount"] = outcome.result.unread(principal.account_id)
    return with_position(JSONResponse(found), position)
