"""Recordings in an S3-compatible bucket, against moto's S3 server in its own process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.helpers.s3 import CREDENTIALS, REGION, running_s3_server
from voxline.recordings.storage import S3Storage, recording_key
from voxline.store.types import utcnow

BUCKET = "voxline-recordings"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with running_s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def storage(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> S3Storage:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    client: Any = boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION)
    bucket = f"{BUCKET}-{os.urandom(4).hex()}"
    client.create_bucket(Bucket=bucket)
    return S3Storage(
        bucket, tmp_path / "spool", prefix="rec/", endpoint_url=s3_endpoint, region=REGION
    )


async def _read(storage: S3Storage, key: str, start: int, end: int) -> bytes:
    return b"".join([chunk async for chunk in storage.read(key, start, end)])


async def test_a_finished_recording_is_uploaded_read_by_range_and_deleted(
    storage: S3Storage,
) -> None:
    key = recording_key("ws_1", "sess_1")
    spooled = storage.spool_path(key)
    spooled.parent.mkdir(parents=True)
    content = bytes(range(256)) * 1000
    spooled.write_bytes(content)

    assert await storage.size(key) is None
    await storage.finalize(key)
    assert not spooled.exists(), "the local copy goes once uploaded"
    assert await storage.size(key) == len(content)
    assert await _read(storage, key, 1000, 1100) == content[1000:1100]
    assert await _read(storage, key, 0, len(content)) == content

    await storage.delete(key)
    assert await storage.size(key) is None


async def test_what_a_crashed_process_left_is_uploaded_and_old_ones_expire(
    storage: S3Storage,
) -> None:
    key = recording_key("ws_1", "sess_2")
    storage.spool_path(key).parent.mkdir(parents=True)
    storage.spool_path(key).write_bytes(b"OggS partial")
    await storage.recover()
    assert await storage.size(key) == len(b"OggS partial")

    assert await storage.delete_older_than(utcnow() - timedelta(days=1)) == 0
    assert await storage.delete_older_than(utcnow() + timedelta(minutes=1)) == 1
    assert await storage.size(key) is None
