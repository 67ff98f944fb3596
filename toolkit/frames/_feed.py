"""A file-like pipe from the event loop (COPY output) to Arrow's CSV reader in a thread."""

from __future__ import annotations

import asyncio
import collections
import io
import queue

_PACE_FROM = 1 << 20
_SMALL = 64 << 10
_PACE = 0.001
"""Once a result has passed ``_PACE_FROM`` bytes, a chunk under ``_SMALL`` means the client
keeps up with the server and reads each 8 KB message in its own event-loop turn: waiting
``_PACE`` seconds lets the next read take what the server wrote meanwhile in one piece.
Over 1M rows: about 3,000 turns fall to 750, the loop's CPU time from 0.23 to 0.16 s."""


class Feed(io.RawIOBase):
    """Bytes arriving on the event loop, read by Arrow's CSV reader in a worker thread.

    Chunks are handed over whole (joined into the block Arrow asks for), so each byte is
    copied once on its way from the socket to Arrow.
    """

    def __init__(self, limit: int | None = None) -> None:
        super().__init__()
        self._chunks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._pending: collections.deque[bytes] = collections.deque()
        self._pending_size = 0
        self._sent = 0  # bytes put; minus ``received``, those waiting (one writer each)
        self._limit = limit
        self._ended = False
        self._abandoned = False
        self.received = 0
        """Bytes taken by the reader so far (0: the result had no rows)."""

    async def put(self, chunk: bytes) -> None:
        if self._abandoned:
            return  # the reader gave up: let COPY run out without buffering
        self._chunks.put(chunk)
        self._sent += len(chunk)
        # Back-pressure: stop reading the socket while the parser thread catches up (it
        # counts what it took, so a short poll, not an asyncio.Event).
        while self._limit is not None and not self._abandoned:
            if self._sent - self.received <= self._limit:
                break
            await asyncio.sleep(0.001)
        if len(chunk) < _SMALL and self._sent > _PACE_FROM:
            await asyncio.sleep(_PACE)

    def end(self) -> None:
        self._chunks.put(None)

    def abandon(self) -> None:
        """The reader stops: drop what is queued and what still arrives."""
        self._abandoned = True

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        # Wait for a whole block (or the end): over 1M rows, Arrow's parse of full 1 MiB
        # blocks took 0.55 s of CPU against 0.74 s for the ~200 KB that had arrived.
        while not self._ended and (size < 0 or self._pending_size < size):
            self._take(self._chunks.get())
        out: list[bytes] = []
        taken = 0
        while self._pending and (size < 0 or taken < size):
            chunk = self._pending.popleft()
            if size >= 0 and taken + len(chunk) > size:
                keep = size - taken
                keep = chunk.rfind(b"\n", 0, keep) + 1 or keep  # at a row's end if one fits
                self._pending.appendleft(chunk[keep:])
                chunk = chunk[:keep]
            out.append(chunk)
            taken += len(chunk)
        self._pending_size -= taken
        if size >= 0 and out:
            self._whole_rows(out)
        return out[0] if len(out) == 1 else b"".join(out)

    def _whole_rows(self, out: list[bytes]) -> None:
        """End the block ``out`` at a row's end: what follows the last newline goes back,
        and a row longer than the block is completed. Arrow's streaming reader refuses a
        row that straddles more than two of its blocks ("straddling object"); blocks of
        whole rows never straddle, whatever a value's size."""
        for i in range(len(out) - 1, -1, -1):
            end = out[i].rfind(b"\n") + 1
            if not end:
                continue
            back = [out[i][end:], *out[i + 1 :]] if end < len(out[i]) else out[i + 1 :]
            for piece in reversed(back):
                self._pending.appendleft(piece)
                self._pending_size += len(piece)
            out[i] = out[i][:end]
            del out[i + 1 :]
            return
        while True:  # no row ends in the block: take the rest of the row
            while not self._pending and not self._ended:
                self._take(self._chunks.get())
            if not self._pending:
                return  # the end of the data
            chunk = self._pending.popleft()
            self._pending_size -= len(chunk)
            end = chunk.find(b"\n") + 1
            if end and end < len(chunk):
                self._pending.appendleft(chunk[end:])
                self._pending_size += len(chunk) - end
                chunk = chunk[:end]
            out.append(chunk)
            if end:
                return

    def _take(self, chunk: bytes | None) -> None:
        if chunk is None:
            self._ended = True
        else:
            self.received += len(chunk)
            self._pending.append(chunk)
            self._pending_size += len(chunk)
