"""TCP push-pull: exchange full member state with one peer (on join, periodically as
anti-entropy, and to reach failed members again).

The initiator sends its state, the answerer reads it, **merges it first** and then replies with
its own state, so a member that learns it was declared failed refutes in the reply itself. Both
sides bound the whole exchange by ``timeout`` and frames by ``MAX_TCP_FRAME_BYTES``.
"""

from __future__ import annotations

import asyncio

from nomadd.gossip.crypto import Envelope, EnvelopeError
from nomadd.gossip.messages import MessageError, PushPull, decode_push_pull, encode_push_pull
from nomadd.gossip.state import MemberTable
from nomadd.gossip.transport import FrameError, read_frame, write_frame

__all__ = ["BAD_INPUT_ERRORS", "PEER_ERRORS", "answer_push_pull", "push_pull"]

TCP_LABEL = b"tcp"
BAD_INPUT_ERRORS = (FrameError, EnvelopeError, MessageError)  # the peer sent garbage
PEER_ERRORS = (OSError, TimeoutError, *BAD_INPUT_ERRORS)  # anything a peer can cause


def _frame(table: MemberTable, envelope: Envelope, *, join: bool) -> bytes:
    local = PushPull(join=join, source=table.local.name, states=table.snapshot())
    return envelope.seal(encode_push_pull(local), TCP_LABEL)


async def push_pull(
    host: str, port: int, *, table: MemberTable, envelope: Envelope, join: bool, timeout: float
) -> str:
    """Initiate an exchange with ``host:port`` and merge the answer; returns the peer's name.

    Raises one of :data:`PEER_ERRORS` when the peer is unreachable, slow or speaks garbage
    (a peer with another key closes the connection: a ``FrameError``).
    """
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            await write_frame(writer, _frame(table, envelope, join=join), timeout)
            data = await read_frame(reader, timeout)
        finally:
            writer.close()
    remote = decode_push_pull(envelope.open(data, TCP_LABEL))
    table.merge(remote.states, remote.source)
    return remote.source


async def answer_push_pull(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    table: MemberTable,
    envelope: Envelope,
    timeout: float,
) -> str:
    """Serve one inbound exchange; returns the peer's name. Raises :data:`PEER_ERRORS`."""
    async with asyncio.timeout(timeout):
        data = await read_frame(reader, timeout)
        remote = decode_push_pull(envelope.open(data, TCP_LABEL))
        table.merge(remote.states, remote.source)
        await write_frame(writer, _frame(table, envelope, join=False), timeout)
    return remote.source
