"""Dynamic batching: concurrent requests share one vectorised model call.

All model work runs on one worker thread. A batch opens with the first queued request and
takes whatever else arrives within `wait_ms` (or until `max_batch`); while it computes, new
requests queue for the next one. Under load, clients whose answers just went out get their
next request into the same batch instead of forming a second, smaller one, so per-message cost
falls as load rises; a lone request waits at most `wait_ms`. Because every model call and every
knowledge-base write goes through that one thread, writes are serialised with reads.

One bad item never fails its batch-mates: when a batch function raises, its items are run again
one by one (on the same thread, in the same hop), so only the item that raises gets the error and
the others get their results. A batch that succeeds takes the fast path, one call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("kefu.service")


@dataclass(frozen=True)
class ItemError:
    """What :func:`run_isolated` returns in place of an item's result when that item alone raised."""

    exception: BaseException


def _results(batch_fn: Callable[[list], Sequence], items: list) -> list:
    results = list(batch_fn(items))
    if len(results) != len(items):
        raise RuntimeError(f"batch function returned {len(results)} results for {len(items)} items")
    return results


def run_isolated(batch_fn: Callable[[list], Sequence], items: list, *,
                 on_call: Callable[[int], None] | None = None) -> list:
    """``batch_fn(items)``, one result per item; if it raises, each item is run alone and an item
    that still raises gets an :class:`ItemError` at its position (the others their results).

    `on_call(size)` is told the size of every call that succeeded. An exception of a batch of one
    item is returned as its ItemError without a second try.
    """
    try:
        results = _results(batch_fn, items)
    except Exception as exc:
        if len(items) == 1:
            return [ItemError(exc)]
        log.warning("a batch of %d items failed (%s: %s); running them one by one", len(items),
                    type(exc).__name__, exc)
    else:
        if on_call is not None:
            on_call(len(items))
        return results
    out: list = []
    for item in items:
        try:
            out.extend(_results(batch_fn, [item]))
        except Exception as exc:  # this item alone fails
            out.append(ItemError(exc))
        else:
            if on_call is not None:
                on_call(1)
    return out


class MicroBatcher:
    """Parameters
    ----------
    max_batch : int
        Most items per model call.
    wait_ms : float
        How long a batch stays open for more requests after its first (milliseconds); 0 takes
        only what is already queued.
    on_batch : callable, optional
        ``on_batch(name, size)`` after each batch, for metrics.
    """

    def __init__(self, *, max_batch: int = 64, wait_ms: float = 2.0,
                 on_batch: Callable[[str, int], None] | None = None) -> None:
        self.max_batch = max_batch
        self.wait_ms = wait_ms
        self.on_batch = on_batch
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kefu-model")
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._loop(), name="kefu-batcher")

    async def stop(self) -> None:
        """Finish what is queued, then stop the worker thread."""
        if self._queue is not None and self._task is not None:
            await self._queue.join()
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._executor.shutdown(wait=True)

    async def submit(self, name: str, key: Hashable, batch_fn: Callable[[list], Sequence], item: Any) -> Any:
        """Queue `item`; it is computed with others of the same `name` and `key` by
        ``batch_fn(items) -> results`` (one result per item, same order)."""
        if self._queue is None:
            raise RuntimeError("the batcher is not running (start() it in the app's lifespan)")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((name, key, batch_fn, item, future))
        return await future

    async def call(self, fn: Callable, *args, **kwargs) -> Any:
        """Run a non-batchable call (a search, a knowledge-base write) on the model thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    async def _loop(self) -> None:
        assert self._queue is not None
        while True:
            pending = [await self._queue.get()]
            deadline = asyncio.get_running_loop().time() + self.wait_ms / 1000
            while len(pending) < self.max_batch:
                if not self._queue.empty():
                    pending.append(self._queue.get_nowait())
                    continue
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    pending.append(await asyncio.wait_for(self._queue.get(), remaining))
                except asyncio.TimeoutError:
                    break
            groups: dict[tuple, list] = {}
            for entry in pending:
                groups.setdefault((entry[0], entry[1]), []).append(entry)
            for (name, _), entries in groups.items():
                await self._run_group(name, entries)
            for _ in pending:
                self._queue.task_done()

    async def _run_group(self, name: str, entries: list) -> None:
        batch_fn = entries[0][2]
        items = [e[3] for e in entries]
        on_call = (lambda size: self.on_batch(name, size)) if self.on_batch is not None else None
        try:
            results = await self.call(run_isolated, batch_fn, items, on_call=on_call)
        except Exception as exc:  # the isolation itself failed (cannot happen short of a bug): no caller hangs
            results = [ItemError(exc)] * len(entries)
        for e, result in zip(entries, results):
            if e[4].done():  # the caller has gone away
                continue
            if isinstance(result, ItemError):
                e[4].set_exception(result.exception)
            else:
                e[4].set_result(result)
