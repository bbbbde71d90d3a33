from collections.abc import Iterator

import pytest

from voxline.providers.executor import InferenceExecutor


@pytest.fixture
def executor() -> Iterator[InferenceExecutor]:
    pool = InferenceExecutor(threads=2)
    yield pool
    pool.shutdown()
