import pytest

from voxline.providers.base import ChatMessage, ToolCall
from voxline.runtime.context import Conversation


def user(text: str) -> ChatMessage:
    return ChatMessage(role="user", content=text)


def agent(text: str) -> ChatMessage:
    return ChatMessage(role="assistant", content=text)


def test_memory_notes_are_appended_to_the_system_prompt() -> None:
    conversation = Conversation("Be brief.", ["Likes tea.", "  ", "Lives in Paris."])
    assert conversation.system.content == (
        "Be brief.\n\nNotes about this caller from earlier conversations:\n"
        "- Likes tea.\n- Lives in Paris."
    )


def test_requests_carry_system_history_and_pending_messages() -> None:
    conversation = Conversation("Be brief.")
    conversation.add(agent("Hello."))
    conversation.add(user("Hi."))
    request = conversation.request([agent("Pending.")])
    assert [m.content for m in request.messages] == ["Be brief.", "Hello.", "Hi.", "Pending."]


def test_the_oldest_turns_are_dropped_past_the_budget() -> None:
    conversation = Conversation("Be brief.", budget_chars=30)
    for index in range(5):
        conversation.add(user(f"question {index}"))
        conversation.add(agent(f"answer {index}"))
    contents = [m.content for m in conversation.messages()]
    assert contents[0] == "Be brief."
    assert contents[-2:] == ["question 4", "answer 4"]
    assert "question 0" not in contents


def test_the_latest_turn_stays_even_when_it_alone_exceeds_the_budget() -> None:
    conversation = Conversation("Be brief.", budget_chars=5)
    conversation.add(user("a long question"))
    assert [m.content for m in conversation.history] == ["a long question"]


def test_a_tool_call_and_its_result_are_dropped_together() -> None:
    conversation = Conversation("Be brief.", budget_chars=60)
    call = ToolCall(id="call_1", name="lookup", arguments={"order": "42"})
    conversation.add(user("where is my order"))
    conversation.add(ChatMessage(role="assistant", tool_calls=(call,)))
    conversation.add(ChatMessage(role="tool", content="shipped", tool_call_id="call_1"))
    conversation.add(user("and the other one, the big order from last week"))
    roles = [m.role for m in conversation.history]
    assert roles == ["user"]


def test_the_last_agent_message_can_be_extended() -> None:
    conversation = Conversation("Be brief.")
    conversation.add(user("hours?"))
    conversation.add(agent("We open"))
    conversation.extend_last_agent_message("at nine.")
    assert conversation.history[-1] == agent("We open at nine.")


def test_extending_after_a_caller_message_adds_an_agent_message() -> None:
    conversation = Conversation("Be brief.")
    conversation.add(user("hours?"))
    conversation.extend_last_agent_message("At nine.")
    assert conversation.history[-1] == agent("At nine.")


def test_system_messages_cannot_be_added() -> None:
    with pytest.raises(ValueError, match="system prompt is fixed"):
        Conversation("Be brief.").add(ChatMessage(role="system", content="x"))
