"""`Recordings`: the process's recording storage, live listen-in and retention, in one place.

`CallEngine` opens a `CallRecording` for each call whose agent records; it wraps the call's
transport and, when the call ends, finishes and stores the file.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from voxline.config import Settings
from voxline.recordings.listen import ListenHub
from voxline.recordings.storage import LocalStorage, RecordingStorage, S3Storage, recording_key
from voxline.recordings.tap import RecordingTransport
from voxline.recordings.writer import RecordingWriter
from voxline.runtime.transport import Transport
from voxline.store.types import utcnow

logger = logging.getLogger(__name__)

RETENTION_SWEEP_S = 3600.0


class CallRecording:
    """One call's recording: `start`, `wrap` the transport, `finish` when the call ends."""

    def __init__(
        self, recordings: Recordings, workspace_id: str, session_id: str, bitrate: int
    ) -> None:
        self._recordings = recordings
        self._session_id = session_id
        self._key = recording_key(workspace_id, session_id)
        self._bitrate = bitrate
        self._writer: RecordingWriter | None = None

    def wrap(self, transport: Transport) -> Transport:
        """The transport to run the call over: `transport`, recorded."""
        if self._writer is None:
            return transport
        return RecordingTransport(transport, self._writer)

    async def start(self) -> None:
        """Open the file and its writer thread; a failure is logged and the call goes on
        unrecorded (a call is never refused for its recording)."""
        path = self._recordings.storage.spool_path(self._key)
        publish = self._recordings.hub.open(self._session_id)
        try:
            self._writer = await asyncio.to_thread(
                RecordingWriter, path, bitrate=self._bitrate, listener=publish
            )
        except Exception:
            logger.exception("session %s: the recording could not start", self._session_id)
            self._recordings.hub.close(self._session_id)

    async def finish(self) -> None:
        """End the file and store it; listeners get the end of the stream."""
        if self._writer is None:
            return
        try:
            await asyncio.to_thread(self._writer.close)
            await self._recordings.storage.finalize(self._key)
        except Exception:
            logger.exception("session %s: the recording could not be stored", self._session_id)
        finally:
            self._recordings.hub.close(self._session_id)


class Recordings:
    def __init__(self, storage: RecordingStorage, *, retention_days: int | None = None) -> None:
        self.storage = storage
        self.hub = ListenHub()
        self._retention_days = retention_days
        self._sweeper: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Recordings:
        storage: RecordingStorage
        if settings.recordings_s3_bucket:
            storage = S3Storage(
                settings.recordings_s3_bucket,
                settings.data_dir / "recordings-spool",
                prefix=settings.recordings_s3_prefix,
                endpoint_url=settings.recordings_s3_endpoint_url,
                region=settings.recordings_s3_region,
            )
        else:
            storage = LocalStorage(settings.data_dir / "recordings")
        return cls(storage, retention_days=settings.recordings_retention_days)

    async def start(self, workspace_id: str, session_id: str, bitrate: int) -> CallRecording:
        """Start recording a call."""
        recording = CallRecording(self, workspace_id, session_id, bitrate)
        await recording.start()
        return recording

    async def delete(self, workspace_id: str, session_id: str) -> None:
        await self.storage.delete(recording_key(workspace_id, session_id))

    async def sweep(self) -> int:
        """Remove the recordings older than the retention period; returns how many."""
        if self._retention_days is None:
            return 0
        removed = await self.storage.delete_older_than(
            utcnow() - timedelta(days=self._retention_days)
        )
        if removed:
            logger.info("removed %d recordings past their retention", removed)
        return removed

    def start_sweeping(self, every_s: float = RETENTION_SWEEP_S) -> None:
        """Upload what a crashed process left, then sweep old recordings periodically."""
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._run(every_s))

    async def aclose(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)

    async def _run(self, every_s: float) -> None:
        try:
            await self.storage.recover()
        except Exception:
            logger.exception("could not recover leftover recordings")
        while True:
            try:
                await self.sweep()
            except Exception:
                logger.exception("sweeping old recordings failed")
            await asyncio.sleep(every_s)
