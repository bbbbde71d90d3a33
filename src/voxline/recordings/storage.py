"""Where finished recordings live: the data directory, or an S3-compatible bucket.

A recording is written to a local file while the call runs (`spool_path`), then `finalize`d:
on disk it is already in place; to a bucket it is uploaded and the local copy removed (a
process that crashed uploads what it left behind at its next start, `recover`). Reads take a
byte range, so the API can serve seeking players.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

logger = logging.getLogger(__name__)

CHUNK = 64 * 1024
SUFFIX = ".ogg"


def recording_key(workspace_id: str, session_id: str) -> str:
    """The storage key of a session's recording."""
    return f"{workspace_id}/{session_id}{SUFFIX}"


class RecordingStorage(Protocol):
    def spool_path(self, key: str) -> Path:
        """The local file a call's recording is written to while it runs."""
        ...

    async def finalize(self, key: str) -> None:
        """The file at `spool_path(key)` is complete: store it for good."""
        ...

    async def size(self, key: str) -> int | None:
        """The stored recording's size in bytes; None if there is none."""
        ...

    def read(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes `start` to `end` (exclusive) of the stored recording, in chunks."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the recording if there is one."""
        ...

    async def delete_older_than(self, cutoff: datetime) -> int:
        """Remove the recordings last written before `cutoff`; returns how many."""
        ...

    async def recover(self) -> None:
        """Store what a previous process left in its spool."""
        ...


class LocalStorage:
    """Recordings under `root` (the data directory's `recordings/`)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def spool_path(self, key: str) -> Path:
        return self.root / key

    async def finalize(self, key: str) -> None:
        return None

    async def size(self, key: str) -> int | None:
        path = self.root / key
        return path.stat().st_size if path.is_file() else None

    async def read(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        with (self.root / key).open("rb") as file:
            file.seek(start)
            remaining = end - start
            while remaining > 0:
                data = await asyncio.to_thread(file.read, min(CHUNK, remaining))
                if not data:
                    return
                remaining -= len(data)
                yield data

    async def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    async def delete_older_than(self, cutoff: datetime) -> int:
        return await asyncio.to_thread(self._delete_older_than, cutoff.timestamp())

    async def recover(self) -> None:
        return None

    def _delete_older_than(self, cutoff: float) -> int:
        removed = 0
        for path in self.root.glob(f"*/*{SUFFIX}"):
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
        return removed


class S3Storage:
    """Recordings in an S3-compatible bucket (boto3, its blocking calls run off the loop);
    spooled under `spool` while the call runs. Credentials come from boto3's usual sources
    (`AWS_ACCESS_KEY_ID`, ...)."""

    def __init__(
        self,
        bucket: str,
        spool: Path,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> None:
        import boto3

        self._bucket = bucket
        self._prefix = prefix
        self._spool = spool
        self._client: Any = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)

    def spool_path(self, key: str) -> Path:
        return self._spool / key

    async def finalize(self, key: str) -> None:
        path = self.spool_path(key)
        await asyncio.to_thread(self._client.upload_file, str(path), self._bucket, self._key(key))
        path.unlink(missing_ok=True)

    async def size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            head = await asyncio.to_thread(
                self._client.head_object, Bucket=self._bucket, Key=self._key(key)
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return int(head["ContentLength"])

    async def read(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        if end <= start:
            return
        answer = await asyncio.to_thread(
            self._client.get_object,
            Bucket=self._bucket,
            Key=self._key(key),
            Range=f"bytes={start}-{end - 1}",
        )
        body = answer["Body"]
        try:
            while data := await asyncio.to_thread(body.read, CHUNK):
                yield data
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._client.delete_object, Bucket=self._bucket, Key=self._key(key))

    async def delete_older_than(self, cutoff: datetime) -> int:
        return await asyncio.to_thread(self._delete_older_than, cutoff)

    async def recover(self) -> None:
        for path in self._spool.glob(f"*/*{SUFFIX}"):
            key = path.relative_to(self._spool).as_posix()
            try:
                await self.finalize(key)
            except Exception:
                logger.exception("could not upload the leftover recording %s", key)

    def _key(self, key: str) -> str:
        return self._prefix + key

    def _delete_older_than(self, cutoff: datetime) -> int:
        removed = 0
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=self._prefix
        )
        for page in pages:
            old = [
                {"Key": entry["Key"]}
                for entry in page.get("Contents", [])
                if entry["Key"].endswith(SUFFIX) and entry["LastModified"].astimezone(UTC) < cutoff
            ]
            if old:
                self._client.delete_objects(Bucket=self._bucket, Delete={"Objects": old})
                removed += len(old)
        return removed
