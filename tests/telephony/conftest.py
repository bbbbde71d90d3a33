from collections.abc import Iterator

import pytest

from tests.fakes.twilio_api import FakeTwilioApi, running_fake_twilio_api


@pytest.fixture
def twilio_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilioApi]:
    # The official client rewrites hostnames when a region or edge is set.
    monkeypatch.delenv("TWILIO_REGION", raising=False)
    monkeypatch.delenv("TWILIO_EDGE", raising=False)
    with running_fake_twilio_api() as api:
        yield api
