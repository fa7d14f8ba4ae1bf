"""Reading the head of an HTTP answer: as much of an error body as a message can show.

A webhook or chat server may answer an error with anything, gigabytes included; httpx would
read it all into memory, and redacting it would hold the event loop for seconds. Callers stream
the answer and read its head only (``read_head``), marked with ``CUT`` when there was more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from analysis._text import CUT

if TYPE_CHECKING:
    import httpx

#: Bytes of an error answer read for its message (the rest is never read).
MAX_HEAD_BYTES = 64 * 1024


async def read_up_to(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of a streamed answer (decoded as sent: gzip undone), and whether
    there was more; the rest is never read. The caller closes the answer."""
    read = bytearray()
    async for chunk in response.aiter_bytes():
        read += chunk
        if len(read) > limit:
            return bytes(read[:limit]), True
    return bytes(read), False


async def read_head(response: httpx.Response, limit: int = MAX_HEAD_BYTES) -> str:
    """The first ``limit`` bytes of a streamed answer, decoded (``CUT`` appended when there
    was more); the caller closes the answer."""
    head, more = await read_up_to(response, limit)
    return head.decode(response.encoding or "utf-8", errors="replace") + (CUT if more else "")
