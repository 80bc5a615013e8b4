"""Placeholder Client until the client agent lands (issue 3): lifecycle methods only.

Replaced wholesale by the client team; the agent relies only on this surface.
"""

from __future__ import annotations

import logging

from nomadd.agent.config import AgentConfig

logger = logging.getLogger(__name__)


class Client:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config

    async def start(self) -> None:
        logger.warning("client mode is not implemented yet in this build")

    async def leave(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def reload(self, config: AgentConfig) -> None:
        self.config = config

    def stats(self) -> dict[str, object]:
        return {}
