"""The store's writer thread: results in queue order, and no call left waiting after close."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from proxy.engine.model import Event
from proxy.store import Changes, Store, StoreError


def _event(data: object) -> Changes:
    return Changes(events=[(Event("test.event", 1, 1, data), "paper")])  # type: ignore[arg-type]


def test_a_batch_that_cannot_be_built_is_settled_after_the_batches_before_it(tmp_path: Path) -> None:
    async def go() -> None:
        store = Store(str(tmp_path / "s.sqlite3"))
        await store.open()
        try:
            gate = threading.Event()
            blocker = asyncio.ensure_future(store._call(gate.wait, 10))  # the writer is busy
            await asyncio.sleep(0)
            good = asyncio.ensure_future(store.commit(_event({"ok": 1})))
            await asyncio.sleep(0)  # next loop iteration: its own batch
            bad = asyncio.ensure_future(store.commit(_event({"bad": object()})))
            for _ in range(3):  # let both hand-offs run
                await asyncio.sleep(0)
            assert not good.done() and not bad.done()  # both wait their turn
            gate.set()
            await blocker
            await good
            with pytest.raises(StoreError):
                await bad
            # the last command failed, so the store says so (the good batch committed first)
            assert store.healthy is False
            assert await store.count("events") == 1
            await store.commit(_event({"ok": 2}))
            assert store.healthy is True
        finally:
            await store.close()

    asyncio.run(go())


def test_calls_after_close_fail_instead_of_waiting(tmp_path: Path) -> None:
    async def go() -> None:
        store = Store(str(tmp_path / "s.sqlite3"))
        await store.open()
        await store.close()
        with pytest.raises(StoreError):
            await asyncio.wait_for(store.load(), 5)
        with pytest.raises(StoreError):
            await asyncio.wait_for(store.commit(Changes()), 5)

    asyncio.run(go())
