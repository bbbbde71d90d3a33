"""`Spool`: records waiting on disk for the database to come back.

Layout: `<root>/<owner>/` holds this process's segments (`00000001.jsonl`, ...), one JSON
record per line, appended only, and a `lock` file the owner holds an exclusive `flock` on for
its whole life. A directory whose lock can be taken belongs to a process that is gone: the next
process to open a spool in `root` adopts its segments (renamed into its own directory, oldest
first) and replays them. A torn last line (a crash mid-write) is skipped.

Appends are written at once (the page cache survives the process) and made durable by
`sync()`, one fsync per batch of appends rather than per record.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_LOCK = "lock"
_SUFFIX = ".jsonl"
_SEGMENT_BYTES = 4 * 1024 * 1024

Record = dict[str, Any]


class Spool:
    """One process's spool directory. Not thread-safe: use it from one task."""

    def __init__(self, root: Path, owner: str, *, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.directory = root / owner
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock_fd = os.open(self.directory / _LOCK, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._next = 1
        self._current: int | None = None
        """File descriptor of the segment being appended to."""
        self._unsynced = False
        self.depth = 0
        """Records on disk, not yet written to the database."""
        self.size = 0
        """Bytes on disk."""
        self._adopt_orphans(root)

    @property
    def full(self) -> bool:
        return self.size >= self.max_bytes

    def append(self, records: Sequence[Record]) -> None:
        """Write `records` at the end of the spool (durable after `sync()`); raises OSError."""
        data = b"".join(_encode(record) for record in records)
        if self._current is None or os.fstat(self._current).st_size >= _SEGMENT_BYTES:
            self._rotate()
        assert self._current is not None
        view = memoryview(data)
        while view:
            view = view[os.write(self._current, view) :]
        self._unsynced = True
        self.depth += len(records)
        self.size += len(data)

    async def sync(self) -> None:
        """Make every append so far durable."""
        if self._unsynced and self._current is not None:
            self._unsynced = False
            await asyncio.to_thread(os.fsync, self._current)

    def seal(self) -> list[Path]:
        """Close the segment being written (later appends start a new one); the sealed
        segments, oldest first."""
        self._close_current()
        return self._segments()

    @staticmethod
    def read(segment: Path) -> list[Record]:
        """A segment's records, in order; a torn or garbled last line is skipped."""
        lines = segment.read_bytes().split(b"\n")
        records: list[Record] = []
        for index, line in enumerate(lines):
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                if index < len(lines) - 1:
                    logger.error("spool segment %s: unreadable record skipped", segment)
        return records

    def remove(self, segment: Path, records: int) -> None:
        """Forget a sealed segment whose `records` are all in the database."""
        size = segment.stat().st_size
        segment.unlink()
        _sync_directory(self.directory)
        self.depth = max(0, self.depth - records)
        self.size = max(0, self.size - size)

    def close(self) -> None:
        """Release the directory; removed when empty, kept (for the next start) otherwise."""
        if self._lock_fd < 0:
            return
        self._close_current()
        if not self._segments():
            (self.directory / _LOCK).unlink(missing_ok=True)
            self.directory.rmdir()
        os.close(self._lock_fd)
        self._lock_fd = -1

    def _rotate(self) -> None:
        self._close_current()
        path = self._segment_path(self._next)
        self._next += 1
        self._current = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        _sync_directory(self.directory)

    def _close_current(self) -> None:
        if self._current is not None:
            if self._unsynced:
                os.fsync(self._current)
                self._unsynced = False
            os.close(self._current)
            self._current = None

    def _segments(self) -> list[Path]:
        return sorted(self.directory.glob(f"*{_SUFFIX}"))

    def _segment_path(self, number: int) -> Path:
        return self.directory / f"{number:08d}{_SUFFIX}"

    def _adopt_orphans(self, root: Path) -> None:
        for other in sorted(path for path in root.iterdir() if path != self.directory):
            if not other.is_dir():
                continue
            try:
                fd = os.open(other / _LOCK, os.O_CREAT | os.O_RDWR, 0o600)
            except OSError:
                continue  # another process is adopting it right now
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its process is alive
                for segment in sorted(other.glob(f"*{_SUFFIX}")):
                    target = self._segment_path(self._next)
                    self._next += 1
                    self.depth += sum(1 for line in segment.read_bytes().split(b"\n") if line)
                    self.size += segment.stat().st_size
                    segment.rename(target)
                _sync_directory(self.directory)
                (other / _LOCK).unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    other.rmdir()
            finally:
                os.close(fd)
        if self.depth:
            logger.warning(
                "adopted %d spooled records left by a stopped process; they will be written",
                self.depth,
            )


def _encode(record: Record) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
