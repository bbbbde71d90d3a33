from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import RunningServer, running_server
from tests.fakes.twilio_api import FakeTwilioApi, running_fake_twilio_api


@pytest.fixture(scope="module")
def twilio_api() -> Iterator[FakeTwilioApi]:
    with running_fake_twilio_api() as api:
        yield api


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, twilio_api: FakeTwilioApi
) -> Iterator[RunningServer]:
    data_dir: Path = tmp_path_factory.mktemp("voxline-e2e")
    env = {
        "VOXLINE_TWILIO_ACCOUNT_SID": twilio_api.account_sid,
        "VOXLINE_TWILIO_AUTH_TOKEN": twilio_api.auth_token,
        "VOXLINE_TWILIO_API_BASE_URL": twilio_api.base_url,
    }
    with running_server(data_dir, env) as running:
        yield running
