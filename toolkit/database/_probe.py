"""Does the peer at a host and port speak PostgreSQL's protocol?

Asked only after a connect failed in a way that names no PostgreSQL error: a URL
pointing at another service's port (MySQL's 3306, Redis's 6379) otherwise fails with
whatever the driver made of the other protocol ("rejected SSL upgrade", "connection was
closed in the middle of operation", a timeout), none of which says what is wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

__all__ = ["Answer", "answer"]

Answer = Literal["postgres", "other", "silent", "unreachable"]
_SSL_REQUEST = (8).to_bytes(4, "big") + (80877103).to_bytes(4, "big")
"""The first message of a PostgreSQL client (SSLRequest): a server answers one byte,
'S' or 'N' (a server too old for it: 'E', an error)."""


async def answer(host: str, port: int, seconds: float = 2.0) -> Answer:
    """What the peer does with an SSLRequest: answers as PostgreSQL does, answers something
    else (or hangs up at once), says nothing within ``seconds``, or cannot be reached."""
    try:
        async with asyncio.timeout(seconds):
            reader, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return "unreachable"
    try:
        writer.write(_SSL_REQUEST)
        async with asyncio.timeout(seconds):
            await writer.drain()
            first = await reader.read(1)
    except TimeoutError:
        return "silent"
    except OSError:
        return "other"
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return "postgres" if first in (b"S", b"N", b"E") else "other"
