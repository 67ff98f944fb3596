"""A file-like pipe from the event loop (COPY output) to Arrow's CSV reader in a thread."""

from __future__ import annotations

import asyncio
import collections
import io
import queue


class _Feed(io.RawIOBase):
    """Bytes arriving on the event loop, read by Arrow's CSV reader in a worker thread.

    Chunks are handed over whole (joined only when Arrow asks for more than one), so
    each byte is copied once on its way from the socket to Arrow.
    """

    def __init__(self, limit: int | None = None) -> None:
        super().__init__()
        self._chunks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._pending: collections.deque[bytes] = collections.deque()
        self._pending_size = 0
        self._queued = 0  # bytes put but not yet taken by the reader
        self._limit = limit
        self._ended = False
        self._abandoned = False
        self.received = 0
        """Bytes taken by the reader so far (0: the result had no rows)."""
        self.escaped = False
        """Whether a backslash was among them: without one, COPY's text format escaped
        nothing, and the reader's values need no decoding."""

    async def put(self, chunk: bytes) -> None:
        if self._abandoned:
            return  # the reader gave up: let COPY run out without buffering
        self._queued += len(chunk)
        self._chunks.put(chunk)
        # Back-pressure: stop reading the socket while the parser thread catches up (the
        # counter is shared with that thread, so a short poll, not an asyncio.Event).
        while self._limit is not None and self._queued > self._limit and not self._abandoned:  # noqa: ASYNC110
            await asyncio.sleep(0.001)

    def end(self) -> None:
        self._chunks.put(None)

    def abandon(self) -> None:
        """The reader stops: drop what is queued and what still arrives."""
        self._abandoned = True

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if not self._pending and not self._ended:
            self._take(self._chunks.get())  # wait for data
        while not self._ended and (size < 0 or self._pending_size < size):
            try:  # more is already here: hand Arrow bigger blocks
                self._take(self._chunks.get_nowait())
            except queue.Empty:
                break
        out: list[bytes] = []
        taken = 0
        while self._pending and (size < 0 or taken < size):
            chunk = self._pending.popleft()
            if size >= 0 and taken + len(chunk) > size:
                keep = size - taken
                self._pending.appendleft(chunk[keep:])
                chunk = chunk[:keep]
            out.append(chunk)
            taken += len(chunk)
        self._pending_size -= taken
        return out[0] if len(out) == 1 else b"".join(out)

    def _take(self, chunk: bytes | None) -> None:
        if chunk is None:
            self._ended = True
        else:
            self.received += len(chunk)
            self._queued -= len(chunk)
            if not self.escaped and b"\\" in chunk:
                self.escaped = True
            self._pending.append(chunk)
            self._pending_size += len(chunk)
