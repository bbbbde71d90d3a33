import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from voxline.providers.executor import InferenceExecutor

# Shared with other test runs on this machine, so the bundled GGUF is assembled only once.
MODEL_CACHE_DIR = Path(tempfile.gettempdir()) / "voxline-test-cache" / "models"


@pytest.fixture
def executor() -> Iterator[InferenceExecutor]:
    pool = InferenceExecutor(threads=2)
    yield pool
    pool.shutdown()


@pytest.fixture
def model_cache_dir() -> Path:
    return MODEL_CACHE_DIR
