"""Recordings in an S3-compatible bucket: a real server process stores a call's recording in
moto's S3 server and serves it from there, ranges included."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import boto3
import pytest

from tests.e2e.server import RunningServer, running_server
from tests.e2e.test_twilio_call import _answer_call, _create_agent, _sessions, _wait_status
from tests.fakes.twilio_api import FakeTwilioApi
from tests.helpers.s3 import CREDENTIALS, REGION, running_s3_server
from voxline.simulator.twilio_peer import SimulatedTwilioCall

BUCKET = "voxline-e2e-recordings"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with running_s3_server() as endpoint:
        client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        client.create_bucket(Bucket=BUCKET)
        yield endpoint


@pytest.fixture(scope="module")
def s3_server(
    tmp_path_factory: pytest.TempPathFactory, twilio_api: FakeTwilioApi, s3_endpoint: str
) -> Iterator[RunningServer]:
    env = {
        "VOXLINE_TWILIO_ACCOUNT_SID": twilio_api.account_sid,
        "VOXLINE_TWILIO_AUTH_TOKEN": twilio_api.auth_token,
        "VOXLINE_TWILIO_API_BASE_URL": twilio_api.base_url,
        "VOXLINE_RECORDINGS_S3_BUCKET": BUCKET,
        "VOXLINE_RECORDINGS_S3_ENDPOINT_URL": s3_endpoint,
        "VOXLINE_RECORDINGS_S3_REGION": REGION,
        "VOXLINE_RECORDINGS_S3_PREFIX": "calls/",
        **CREDENTIALS,
    }
    data_dir: Path = tmp_path_factory.mktemp("voxline-s3")
    with running_server(data_dir, env) as running:
        yield running


async def test_a_recording_is_kept_in_the_bucket_and_served_from_it(
    s3_server: RunningServer, twilio_api: FakeTwilioApi, s3_endpoint: str
) -> None:
    agent_id = _create_agent(s3_server, recording={"enabled": True})
    call_sid, stream_url, relay = _answer_call(s3_server, twilio_api, agent_id)
    session_id = _sessions(s3_server, agent_id)[0]["id"]
    async with SimulatedTwilioCall(stream_url, relay=relay, call_sid=call_sid) as call:
        await call.wait_for_agent_audio(timeout=5)
        await call.wait_until_agent_silent(600, timeout=10)
        await call.hang_up()
    session = await _wait_status(s3_server, session_id, "completed")

    client: Any = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    key = f"calls/{session['workspaceId']}/{session_id}.ogg"
    stored = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert not list((Path(s3_server.env["VOXLINE_DATA_DIR"]) / "recordings-spool").rglob("*.ogg"))

    with s3_server.client() as api:
        whole = api.get(f"/v1/sessions/{session_id}/recording")
        assert whole.status_code == 200 and whole.content == stored
        part = api.get(f"/v1/sessions/{session_id}/recording", headers={"Range": "bytes=10-49"})
        assert part.status_code == 206 and part.content == stored[10:50]
        with av.open(io.BytesIO(whole.content)) as container:
            assert container.streams.audio[0].channels == 2
        assert api.delete(f"/v1/sessions/{session_id}").status_code == 204
    assert "Contents" not in client.list_objects_v2(Bucket=BUCKET, Prefix=key)
