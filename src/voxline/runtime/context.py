"""The conversation as the LLM sees it: system prompt, caller notes, bounded history.

History is kept in whole turns (a turn starts at a caller message and holds the agent's
messages, tool calls and tool results that answered it), so trimming never separates a tool
call from its result. The oldest turns go first once the history passes its budget; the
system prompt and the latest turn always stay.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from voxline.providers.base import ChatMessage, LlmRequest, ToolDefinition

HISTORY_BUDGET_CHARS = 24_000
"""About 6k tokens of history (at ~4 characters a token)."""
_NOTES_HEADER = "Notes about this caller from earlier conversations:"


class Conversation:
    """One call's LLM context. Messages are appended as they are heard, never rewritten,
    except the last agent message, which may be extended when it resumes after a false
    interruption."""

    def __init__(
        self,
        system_prompt: str,
        memory: Sequence[str] = (),
        *,
        budget_chars: int = HISTORY_BUDGET_CHARS,
    ) -> None:
        if budget_chars <= 0:
            raise ValueError(f"budget_chars must be positive, got {budget_chars}")
        notes = [note.strip() for note in memory if note.strip()]
        if notes:
            listed = "\n".join(f"- {note}" for note in notes)
            system_prompt = f"{system_prompt.rstrip()}\n\n{_NOTES_HEADER}\n{listed}"
        self.system = ChatMessage(role="system", content=system_prompt)
        self._budget = budget_chars
        self._turns: list[list[ChatMessage]] = []
        self._chars = 0

    @property
    def history(self) -> tuple[ChatMessage, ...]:
        """Every message after the system prompt, oldest first."""
        return tuple(message for turn in self._turns for message in turn)

    def messages(self, pending: Iterable[ChatMessage] = ()) -> tuple[ChatMessage, ...]:
        """System prompt, history, then `pending` (messages not committed yet)."""
        return (self.system, *self.history, *pending)

    def request(
        self, pending: Iterable[ChatMessage] = (), tools: tuple[ToolDefinition, ...] = ()
    ) -> LlmRequest:
        """An LLM request over the whole context plus `pending`."""
        return LlmRequest(messages=self.messages(pending), tools=tools)

    def add(self, message: ChatMessage) -> None:
        """Append a message; a caller message starts a new turn."""
        if message.role == "system":
            raise ValueError("the system prompt is fixed; add user, assistant or tool messages")
        if message.role == "user" or not self._turns:
            self._turns.append([])
        self._turns[-1].append(message)
        self._chars += _size(message)
        self._trim()

    def extend_last_agent_message(self, text: str) -> None:
        """Append `text` to the last message when it is the agent's plain speech; else add it
        as a new agent message."""
        if self._turns and self._turns[-1]:
            last = self._turns[-1][-1]
            if last.role == "assistant" and not last.tool_calls:
                joined = f"{last.content} {text}".strip()
                self._turns[-1][-1] = ChatMessage(role="assistant", content=joined)
                self._chars += len(joined) - len(last.content)
                return
        self.add(ChatMessage(role="assistant", content=text))

    def _trim(self) -> None:
        while self._chars > self._budget and len(self._turns) > 1:
            dropped = self._turns.pop(0)
            self._chars -= sum(_size(message) for message in dropped)


def _size(message: ChatMessage) -> int:
    size = len(message.content)
    for call in message.tool_calls:
        size += len(call.name) + len(str(call.arguments))
    return size
