"""Waking asyncio waiters from other threads."""

from __future__ import annotations

import asyncio
import threading

from election.wakeup import Wakeup, _Waiter


class CountingWakeup(Wakeup):
    def __init__(self) -> None:
        super().__init__()
        self.wakes = 0

    def _wake(self, waiter: _Waiter) -> None:
        self.wakes += 1
        super()._wake(waiter)


def notify_from_a_thread(wakeup: Wakeup, times: int) -> None:
    def burst() -> None:
        for _ in range(times):
            wakeup.notify()

    thread = threading.Thread(target=burst)
    thread.start()
    thread.join()


async def test_a_burst_of_notifies_from_a_thread_wakes_once_and_later_ones_again() -> None:
    wakeup = CountingWakeup()
    with wakeup.subscribe() as changed:
        notify_from_a_thread(wakeup, 1000)
        await asyncio.wait_for(changed.wait(), 1.0)
        await asyncio.sleep(0.05)
        assert wakeup.wakes == 1  # the burst came while the first wake-up was pending

        changed.clear()
        notify_from_a_thread(wakeup, 1)
        await asyncio.wait_for(changed.wait(), 1.0)  # a notify after it ran wakes again
        assert wakeup.wakes == 2


async def test_a_notify_on_the_waiters_own_loop_sets_it_at_once() -> None:
    wakeup = Wakeup()
    with wakeup.subscribe() as changed:
        wakeup.notify()
        assert changed.is_set()
