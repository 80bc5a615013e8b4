"""Placeholder Server until the server core lands (issue 2): lifecycle methods only.

Replaced wholesale by the server team; the agent relies only on this surface.
"""

from __future__ import annotations

import logging

from nomadd.agent.config import AgentConfig

logger = logging.getLogger(__name__)


class Server:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.node_id = ""

    async def start(self) -> None:
        logger.warning("server mode is not implemented yet in this build")

    async def leave(self) -> None:
        logger.info("server starting leave")

    async def shutdown(self) -> None:
        return None

    async def reload(self, config: AgentConfig) -> None:
        self.config = config

    def stats(self) -> dict[str, object]:
        return {}

    def member_info(self) -> dict[str, object]:
        return {}
