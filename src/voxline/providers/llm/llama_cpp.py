"""Offline LLM: llama.cpp (llama-cpp-python) on a GGUF file, the bundled Gemma 3 270M by default.

The prompt format follows the model (see `prompting`): a GGUF with a chat template is
prompted through that template and may call tools (JSON tool calls); a base model without
one, like the bundled Gemma, is prompted as a call transcript and is given no tools (a
warning is logged when an agent with tools runs on it).

One `LlamaModel` per GGUF file and context size serves every call of the process. A llama.cpp
context is not thread-safe, so generations on one model run one at a time: a second call's
turn waits (on the event loop, holding no pool thread) until the first one's generation ends.
A call's next turn extends its previous prompt, so when no other call ran in between,
llama.cpp reuses the evaluated prefix and the first token comes sooner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import weakref
from collections.abc import AsyncGenerator, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

from voxline.agent_spec import LlamaCppLlm
from voxline.providers.base import (
    LlmEvent,
    LlmRequest,
    ProviderError,
    ProviderUnavailable,
    TextDelta,
    ToolCallsRequested,
    Usage,
)
from voxline.providers.executor import InferenceExecutor
from voxline.providers.llm.prompting import (
    ChatTemplateFormat,
    Prompt,
    PromptFormat,
    ToolCallFilter,
    TranscriptFormat,
    fit_prompt,
)
from voxline.providers.local_models import LOCAL_EXTRA, gguf_path, import_optional, models
from voxline.providers.streaming import iterate_in_executor

if TYPE_CHECKING:
    from llama_cpp import Llama
    from llama_cpp.llama_types import CreateCompletionStreamResponse

logger = logging.getLogger(__name__)


class LlamaModel:
    """A loaded GGUF model and the prompt format its metadata calls for.

    `lock` is held while llama.cpp computes with this model; hold it to use `llama` directly.
    """

    def __init__(self, llama: Llama, prompt_format: PromptFormat, path: Path) -> None:
        self.llama = llama
        self.prompt_format = prompt_format
        self.path = path
        self.lock = threading.Lock()
        self._turns_lock = threading.Lock()
        self._turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._warm = False

    @classmethod
    def load(cls, path: Path, context_tokens: int, threads: int) -> LlamaModel:
        """Load `path` (blocking); its `tokenizer.chat_template`, if any, selects chat mode."""
        llama_cpp = import_optional("llama_cpp", "llama-cpp-python", LOCAL_EXTRA)
        try:
            llama = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=context_tokens,
                n_threads=threads,
                n_threads_batch=threads,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ProviderUnavailable(f"could not load GGUF model '{path}': {exc}") from exc
        template = llama.metadata.get("tokenizer.chat_template")
        prompt_format: PromptFormat = (
            _chat_format(llama, template) if template else TranscriptFormat()
        )
        return cls(llama, prompt_format, path)

    def turn(self) -> asyncio.Lock:
        """The lock a generation holds on the event loop; waiting on it costs no thread."""
        loop = asyncio.get_running_loop()
        # One lock per event loop, as asyncio locks are bound to one; `lock` keeps
        # generations exclusive even across loops.
        with self._turns_lock:
            return self._turns.setdefault(loop, asyncio.Lock())

    def generate(
        self, request: LlmRequest, temperature: float, max_tokens: int
    ) -> Iterator[LlmEvent]:
        """Blocking: stream the reply to `request` as TextDelta, ToolCallsRequested, Usage
        (whose output_tokens counts the tokens of the reply text)."""
        tools = request.tools if self.prompt_format.supports_tools else ()
        with self.lock:
            prompt, tokens = fit_prompt(
                self.prompt_format,
                request.messages,
                tools,
                self._tokenize,
                budget=self.llama.n_ctx() - max_tokens,
            )
            tool_filter = ToolCallFilter(tools)
            reply: list[str] = []
            completion = cast(
                "Generator[CreateCompletionStreamResponse, None, None]",
                self.llama.create_completion(
                    tokens,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    stop=list(prompt.stop),
                    stream=True,
                ),
            )
            with contextlib.closing(completion):
                for chunk in completion:
                    text = chunk["choices"][0]["text"]
                    if not reply:
                        text = text.lstrip()
                    if text:
                        reply.append(text)
                        spoken = tool_filter.feed(text)
                        if spoken:
                            yield TextDelta(spoken)
            rest, calls = tool_filter.finish()
            if rest:
                yield TextDelta(rest)
            if calls:
                yield ToolCallsRequested(calls)
            output = self.llama.tokenize("".join(reply).encode(), add_bos=False) if reply else []
        yield Usage(input_tokens=len(tokens), output_tokens=len(output))

    def prefill(self, request: LlmRequest) -> None:
        """Blocking: evaluate the prompt of `request` into the context's cache; a following
        request that starts with the same tokens evaluates only the rest."""
        tools = request.tools if self.prompt_format.supports_tools else ()
        with self.lock:
            _, tokens = fit_prompt(
                self.prompt_format,
                request.messages,
                tools,
                self._tokenize,
                budget=self.llama.n_ctx(),
            )
            self.llama.create_completion(tokens, max_tokens=1)

    def warm_up(self) -> None:
        """Blocking: run one tiny generation so the first real turn is not the slow one."""
        if self._warm:
            return
        with self.lock:
            self.llama.create_completion(self.llama.tokenize(b"Hello"), max_tokens=1)
            self._warm = True

    def _tokenize(self, prompt: Prompt) -> list[int]:
        tokens: list[int] = self.llama.tokenize(
            prompt.text.encode(), add_bos=not prompt.special, special=prompt.special
        )
        return tokens


def _chat_format(llama: Llama, template: str) -> ChatTemplateFormat:
    chat_format = import_optional("llama_cpp.llama_chat_format", "llama-cpp-python", LOCAL_EXTRA)
    formatter = chat_format.Jinja2ChatFormatter(
        template=template,
        eos_token=_token_text(llama, llama.token_eos()),
        bos_token=_token_text(llama, llama.token_bos()),
    )

    def render(messages: list[dict[str, str]]) -> tuple[str, tuple[str, ...]]:
        result = formatter(messages=messages)
        return str(result.prompt), tuple(result.stop or ())

    return ChatTemplateFormat(render)


def _token_text(llama: Llama, token: int) -> str:
    if token < 0:
        return ""
    text: bytes = llama.detokenize([token], special=True)
    return text.decode(errors="ignore")


class LlamaCppLanguageModel:
    """LanguageModel on a process-wide llama.cpp model; honours temperature and max_tokens."""

    name = "llama_cpp"

    def __init__(self, spec: LlamaCppLlm, model: LlamaModel, executor: InferenceExecutor) -> None:
        self.spec = spec
        self.model = model
        self._executor = executor

    @classmethod
    async def create(
        cls, spec: LlamaCppLlm, executor: InferenceExecutor, *, cache_dir: Path | None = None
    ) -> LlamaCppLanguageModel:
        """Load (once per process) the model of `spec`. The bundled model is assembled into
        `cache_dir` (default ~/.cache/voxline/models) on first use."""
        import_optional("llama_cpp", "llama-cpp-python", LOCAL_EXTRA)
        path = await executor.run(gguf_path, spec.model_path, cache_dir)
        threads = executor.threads
        key = ("llama_cpp", str(path.resolve()), spec.context_tokens, threads)
        model = await models.get(
            key, lambda: LlamaModel.load(path, spec.context_tokens, threads), executor
        )
        return cls(spec, model, executor)

    async def warm_up(self) -> None:
        """Run a tiny generation once per model, so that the first call is as fast as the next."""
        await self._executor.run(self.model.warm_up)

    async def open(self) -> LlamaCppSession:
        return LlamaCppSession(self.spec, self.model, self._executor)


class LlamaCppSession:
    """One call's use of the shared model; `stream` waits its turn behind other calls."""

    def __init__(self, spec: LlamaCppLlm, model: LlamaModel, executor: InferenceExecutor) -> None:
        self._spec = spec
        self._model = model
        self._executor = executor
        self._closed = False
        self._warned_tools = False

    async def stream(self, request: LlmRequest) -> AsyncGenerator[LlmEvent, None]:
        if self._closed:
            raise ProviderError("the llama.cpp session is closed")
        if request.tools and not self._model.prompt_format.supports_tools:
            self._warn_no_tools(len(request.tools))

        def produce() -> Iterator[LlmEvent]:
            return self._model.generate(request, self._spec.temperature, self._spec.max_tokens)

        async with (
            self._model.turn(),
            contextlib.aclosing(iterate_in_executor(self._executor, produce)) as events,
        ):
            try:
                async for event in events:
                    yield event
            except ProviderError:
                raise
            except Exception as exc:
                raise ProviderError(f"llama.cpp generation failed: {exc}") from exc

    async def prefill(self, request: LlmRequest) -> None:
        """Evaluate the call's prompt so far while the greeting plays (the first answer then
        starts from the cache). Another call using the model in between evicts it."""
        if self._closed:
            return
        async with self._model.turn():
            try:
                await self._executor.run(self._model.prefill, request)
            except Exception as exc:
                logger.warning("prefilling the llama.cpp prompt failed: %s", exc)

    async def aclose(self) -> None:
        self._closed = True

    def _warn_no_tools(self, count: int) -> None:
        if self._warned_tools:
            return
        self._warned_tools = True
        logger.warning(
            "model %s has no chat template: it is prompted as a transcript and cannot call "
            "tools; %d tool(s) of this agent are not offered to it",
            self._model.path.name,
            count,
        )
