"""A graceful stop that drains the node keeps extending systemd's stop timeout while it runs."""

from __future__ import annotations

import asyncio

from nomadd.agent.sdnotify import Notifier


class _Sent:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def notify(self, text: str) -> None:
        self.lines.append(text)


def test_extend_stop_timeout_asks_for_twice_the_step_until_cancelled() -> None:
    notifier = Notifier()
    assert not notifier.enabled  # no NOTIFY_SOCKET: nothing to do, returns at once
    asyncio.run(asyncio.wait_for(notifier.extend_stop_timeout(0.01), 1))
    sent = _Sent()
    notifier._notifier = sent  # type: ignore[assignment]

    async def main() -> None:
        task = asyncio.create_task(notifier.extend_stop_timeout(0.05))
        await asyncio.sleep(0.12)
        task.cancel()

    asyncio.run(main())
    assert 2 <= len(sent.lines) <= 4
    assert set(sent.lines) == {"EXTEND_TIMEOUT_USEC=100000"}
