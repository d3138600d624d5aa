"""Page-number paging with read-ahead, shared by the APIs that page by number.

The loop keeps up to ``concurrency`` page requests in flight and yields pages strictly in order, so that the
caller can checkpoint after each one; it stops at the first short page (APIs with no total count) or at the
known last page, and cancels whatever it had asked for beyond it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def numbered_pages(
    fetch: Callable[[int], Awaitable[T]],
    *,
    first_page: int,
    is_last: Callable[[int, T], bool],
    concurrency: int = 1,
    last_page: int | None = None,
) -> AsyncIterator[tuple[int, T]]:
    """Yield ``(page_number, answer)`` from ``first_page`` on, until ``is_last`` says so or ``last_page``."""
    pending: dict[int, asyncio.Task[T]] = {}
    next_to_ask = first_page
    current = first_page
    window = 1  # read ahead only once a full page shows there is more: a short answer costs one request
    try:
        while True:
            while len(pending) < window and (last_page is None or next_to_ask <= last_page):
                pending[next_to_ask] = asyncio.ensure_future(fetch(next_to_ask))
                next_to_ask += 1
            if current not in pending:
                return
            answer = await pending.pop(current)
            yield current, answer
            if is_last(current, answer) or (last_page is not None and current >= last_page):
                return
            current += 1
            window = max(1, concurrency)
    finally:
        for task in pending.values():
            task.cancel()
        if pending:
            await asyncio.gather(*pending.values(), return_exceptions=True)


def short_page(limit: int) -> Callable[[int, Any], bool]:
    """``is_last`` for APIs without a total: the first page with fewer than ``limit`` records is the last."""
    return lambda _page, records: len(records) < limit
