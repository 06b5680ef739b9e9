"""The Conversation aggregate's rules, in memory."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregates.messages import Conversation, ConversationNotFound, InvalidMessage

AT = datetime(2026, 5, 1, tzinfo=UTC)


def test_a_pair_of_users_has_one_conversation_whoever_writes_first() -> None:
    assert Conversation.create_id(["a", "b"]) == Conversation.create_id(["b", "a"])
    assert Conversation.start("a", "b", AT).id == Conversation.start("b", "a", AT).id
    with pytest.raises(InvalidMessage):
        Conversation.start("a", "a", AT)


@given(st.lists(st.sampled_from(["a", "b", "read-a", "read-b"]), max_size=30))
def test_unread_counts_follow_posts_and_reads(steps: list[str]) -> None:
    conversation = Conversation.start("a", "b", AT)
    unread = {"a": 0, "b": 0}
    for step in steps:
        if step.startswith("read-"):
            user = step[-1]
            assert conversation.mark_read(user, AT) == (unread[user] > 0)
            unread[user] = 0
        else:
            conversation.post(step, "hi", None, None, AT)
            unread["b" if step == "a" else "a"] += 1
            unread[step] = 0  # a sender has read what it answers
        assert {u: conversation.unread(u) for u in unread} == unread


def test_only_participants_post_or_read_and_texts_are_checked() -> None:
    conversation = Conversation.start("a", "b", AT)
    with pytest.raises(ConversationNotFound):
        conversation.post("c", "hi", None, None, AT)
    with pytest.raises(ConversationNotFound):
        conversation.mark_read("c", AT)
    for bad in ("", "  ", "x" * 2001, "\x00"):
        with pytest.raises(InvalidMessage):
            conversation.post("a", bad, None, None, AT)
    assert conversation.post("a", " 你好\n再見 ", None, None, AT) == 1
