"""LoopHandoff: items posted from another thread reach the loop in order, in bursts."""

from __future__ import annotations

import asyncio
import threading

from nomadd.server.handoff import LoopHandoff


def test_items_from_a_thread_arrive_in_order_with_one_wakeup_per_burst() -> None:
    async def main() -> None:
        bursts: list[list[int]] = []
        handoff: LoopHandoff[int] = LoopHandoff(bursts.append)
        handoff.post(-1)  # no loop yet: dropped
        handoff.loop = asyncio.get_running_loop()

        def producer() -> None:
            for i in range(500):
                handoff.post(i)

        thread = threading.Thread(target=producer)
        thread.start()
        thread.join()  # the loop is not running meanwhile: everything waits for one drain
        for _ in range(100):
            if sum(len(b) for b in bursts) == 500:
                break
            await asyncio.sleep(0)
        assert [i for b in bursts for i in b] == list(range(500))
        assert len(bursts) == 1

    asyncio.run(main())
