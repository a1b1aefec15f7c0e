"""One asyncio loop in one daemon thread, and the way other threads hand it work.

A thousand hosts mostly sit idle on an open stream, so one loop (grpc.aio)
follows them all instead of a thread per host. Nothing runs until `start`.
"""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str) -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._loop is not None and self._loop.is_running()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self._loop.call_soon(started.set)
        self._thread = threading.Thread(target=self._loop.run_forever, name=self._name, daemon=True)
        self._thread.start()
        started.wait()

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 30.0) -> T:
        """Run a coroutine on the loop and wait for its result."""
        if self._loop is None:
            coro.close()
            raise RuntimeError(f"{self._name} is not started")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def call(self, fn: Callable[[], T], timeout_s: float = 30.0) -> T:
        """Run `fn` on the loop when it runs (and wait), or right here before it has started."""
        if not self.running:
            return fn()

        async def on_loop() -> T:
            return fn()
        return self.run(on_loop(), timeout_s)

    def stop(self, last: Coroutine[Any, Any, None] | None = None, timeout_s: float = 30.0) -> None:
        """Run `last` on the loop (if given), then end the loop and its thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            if last is not None:
                last.close()
            return
        try:
            if last is not None and loop.is_running():
                asyncio.run_coroutine_threadsafe(last, loop).result(timeout_s)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            if not thread.is_alive():
                loop.close()
            self._loop = self._thread = None
