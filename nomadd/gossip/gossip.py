"""The :class:`Gossip` pool: sockets and timers around :class:`nomadd.gossip.state.MemberTable`.

Loops (all owned by one ``asyncio.TaskGroup`` inside ``start()``'s runner task, itself owned,
with the relayed pings and the TCP handlers, by the pool's :class:`~nomadd.helper.supervisor.Supervisor`):

* probe: every ``probe_interval`` ping the next member (round-robin over a shuffled list); no
  ack within ``probe_timeout`` ⇒ ``ping-req`` through ``indirect_checks`` others, wait out the
  interval ⇒ mark it suspect.
* gossip: every ``gossip_interval`` send queued updates to ``gossip_nodes`` random members.
* push-pull: every ``push_pull_interval`` exchange full state with a random member over TCP.
* reconnect: every ``reconnect_interval`` try a push-pull with a random failed member.
* timers: expire suspicions, reap failed/left members.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import random
import socket
from collections.abc import Callable, Coroutine, Sequence

from nomadd.gossip.crypto import Envelope, EnvelopeError
from nomadd.gossip.member import (
    ForceLeaveResult,
    GossipConfig,
    Member,
    MemberEvent,
)
from nomadd.gossip.messages import (
    MAX_MESSAGES_PER_PACKET,
    Ack,
    Message,
    MessageError,
    Ping,
    PingReq,
    decode_packet,
    encode_message,
    pack_compound,
)
from nomadd.gossip.pushpull import BAD_INPUT_ERRORS, PEER_ERRORS, answer_push_pull, push_pull
from nomadd.gossip.state import Liveness, MemberTable, NodeRecord
from nomadd.gossip.transport import (
    MAX_UDP_PACKET_BYTES,
    UDP_BUDGET_BYTES,
    RateLimitedLog,
    UDPEndpoint,
    guess_advertise_addr,
    parse_host_port,
)
from nomadd.helper.supervisor import Supervisor
from nomadd.structs.errors import ConfigError, NomaddError

__all__ = ["Gossip"]

logger = logging.getLogger(__name__)

_UDP = b"udp"
BIND_ATTEMPTS = 20  # port 0: retry when the TCP port matching the ephemeral UDP port is taken
MAX_TCP_CONNS = 64  # concurrent inbound push-pulls; more are closed at once
MAX_PENDING_TASKS = 512  # relayed pings + tcp handlers in flight: bounds a ping-req flood
MAX_DIRECT_SENDS = 64  # leave/force-leave notices sent straight to at most this many peers
TIMER_TICK_S = 0.1  # suspicion expiry and reaping resolution


class Gossip:
    """One gossip pool (the LAN pool of a region). See the package docstring for the API."""

    def __init__(
        self,
        config: GossipConfig,
        on_event: Callable[[MemberEvent], None] | None = None,
        *,
        tasks: Supervisor | None = None,
    ) -> None:
        self._config = config
        self._on_event = on_event
        self._envelope = Envelope(config.encrypt_key)
        self._drops = RateLimitedLog(logger)
        self._table: MemberTable | None = None
        self._udp: UDPEndpoint | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks = tasks or Supervisor("gossip")
        self._tcp_conns = 0
        self._acks: dict[int, asyncio.Future[None]] = {}
        self._seq = random.randrange(1 << 31)
        self._probe_queue: list[str] = []
        self._stopped = False
        self.port = 0

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        if self._table is not None:
            raise RuntimeError("gossip already started")
        loop = asyncio.get_running_loop()
        cfg = self._config
        attempts = BIND_ATTEMPTS if cfg.bind_port == 0 else 1
        for attempt in range(attempts):
            try:
                transport, proto = await loop.create_datagram_endpoint(
                    lambda: UDPEndpoint(self._on_packet), local_addr=(cfg.bind_addr, cfg.bind_port)
                )
            except OSError as err:
                raise ConfigError(
                    f"gossip: bind {cfg.bind_addr}:{cfg.bind_port}/udp: {err.strerror}"
                ) from err
            port = int(transport.get_extra_info("sockname")[1])
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, host=cfg.bind_addr, port=port)
            except OSError as err:
                transport.close()
                if err.errno != errno.EADDRINUSE or attempt == attempts - 1:
                    raise ConfigError(f"gossip: bind {cfg.bind_addr}:{port}/tcp: {err.strerror}") from err
                continue
            self._udp = proto
            self.port = port
            break
        addr = cfg.advertise_addr or guess_advertise_addr(cfg.bind_addr)
        self._table = MemberTable(
            config=cfg, addr=addr, port=cfg.advertise_port or self.port, emit=self._emit
        )
        # Vital: the loops only end on a bug (each step's errors are caught); a member whose loops
        # are gone stops probing and answering, and the others declare it failed while it runs.
        self._tasks.spawn(self._run(), f"gossip:{cfg.name}", vital=True)
        logger.info(
            "gossip started name=%s bind=%s:%d advertise=%s:%d encrypted=%s",
            cfg.name,
            cfg.bind_addr,
            self.port,
            addr,
            self._table.local.port,
            self._envelope.encrypted,
        )

    async def shutdown(self) -> None:
        """Stop every task and close the sockets, without telling anyone. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        await self._tasks.aclose()
        for fut in self._acks.values():
            fut.cancel()
        self._acks.clear()
        if self._tcp is not None:
            self._tcp.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._tcp.wait_closed()
        if self._udp is not None and self._udp.transport is not None:
            self._udp.transport.close()
        logger.info("gossip stopped name=%s", self._config.name)

    async def leave(self, timeout: float = 5.0) -> None:
        """Announce "leaving", then "left", give it ``leave_propagate_delay`` to spread, stop."""
        table = self._require_table()
        if self._stopped:
            return
        try:
            async with asyncio.timeout(timeout):
                self._send_to_peers(table.start_local_leave())
                await asyncio.sleep(self._config.gossip_interval)
                self._send_to_peers(table.finish_local_leave())
                if table.peers(Liveness.ALIVE, Liveness.SUSPECT):
                    await asyncio.sleep(self._config.leave_propagate_delay)
        except TimeoutError:
            logger.warning("gossip leave timed out name=%s timeout=%s", self._config.name, timeout)
        await self.shutdown()

    # --- public API -------------------------------------------------------------------------

    async def join(self, addrs: Sequence[str]) -> int:
        """Push-pull with each address ("host[:port]", default port 4648); returns how many
        answered. Failures are logged; every attempt is bounded by ``tcp_timeout``."""
        self._require_table()
        results: list[asyncio.Task[bool]] = []
        async with asyncio.TaskGroup() as tg:
            for address in addrs:
                results.append(tg.create_task(self._join_one(address)))
        joined = sum(1 for t in results if t.result())
        logger.info("gossip join finished joined=%d requested=%d", joined, len(addrs))
        return joined

    @property
    def keyring(self) -> Envelope:
        """The encryption keyring (install/use/remove keys at run time; ``nomadd.gossip.crypto``)."""
        return self._envelope

    def members(self) -> list[Member]:
        """Every member known, this one included; none before :meth:`start` (the HTTP API and
        the server's views already run then)."""
        return self._table.members() if self._table is not None else []

    def local_member(self) -> Member:
        return self._require_table().local.to_member()

    def update_tags(self, tags: dict[str, str]) -> None:
        self._require_table().update_local_tags(tags)

    async def force_leave(self, name: str, prune: bool = False) -> ForceLeaveResult:
        """Failed member → left (``prune``: forget it at once). Alive members are not touched."""
        result, msg = self._require_table().force_leave(name, prune)
        if msg is not None:
            self._send_to_peers(msg)
        return result

    # --- loops ------------------------------------------------------------------------------

    async def _run(self) -> None:
        cfg = self._config
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._every(cfg.probe_interval, self._probe, "probe"))
            tg.create_task(self._every(cfg.gossip_interval, self._gossip, "gossip"))
            tg.create_task(self._every(cfg.push_pull_interval, self._push_pull_random, "pushpull"))
            tg.create_task(self._every(cfg.reconnect_interval, self._reconnect, "reconnect"))
            tg.create_task(self._every(min(TIMER_TICK_S, cfg.probe_interval / 4), self._tick, "tick"))

    async def _every(
        self, interval: float, step: Callable[[], Coroutine[None, None, None]], what: str
    ) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + random.uniform(0, interval)  # stagger pools started together
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            try:
                await step()
            except Exception:  # keep the pool alive; a bug here is logged with its traceback
                logger.exception("gossip %s step failed", what)
            # A fixed cadence: a slow step (a failed probe) does not stretch the interval,
            # and a step longer than the interval is not followed by a burst of catch-ups.
            due = max(due + interval, loop.time())

    async def _tick(self) -> None:
        self._require_table().tick()

    async def _probe(self) -> None:
        table = self._require_table()
        target = self._next_probe_target(table)
        if target is None:
            return
        cfg = self._config
        probe_timeout = cfg.probe_timeout_for(target.tags)
        seq, fut = self._new_ack()
        try:
            self._send(
                (target.addr, target.port),
                Ping(seq=seq, target=target.name, source=table.local.name),
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(probe_timeout):
                    await asyncio.shield(fut)
                return
            helpers = [n for n in table.peers(Liveness.ALIVE) if n.name != target.name]
            for helper in random.sample(helpers, min(cfg.indirect_checks, len(helpers))):
                req = PingReq(
                    seq=seq,
                    target=target.name,
                    addr=target.addr,
                    port=target.port,
                    source=table.local.name,
                )
                self._send((helper.addr, helper.port), req)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(cfg.probe_interval - probe_timeout, probe_timeout)):
                    await asyncio.shield(fut)
                return
            logger.debug("gossip probe failed name=%s", target.name)
            table.suspect_after_probe(target.name)
        finally:
            self._acks.pop(seq, None)
            fut.cancel()

    def _next_probe_target(self, table: MemberTable) -> NodeRecord | None:
        """Round-robin over a shuffled list, reshuffled each round (memberlist's probe order)."""
        probeable = (Liveness.ALIVE, Liveness.SUSPECT)
        for _ in range(2):
            while self._probe_queue:
                node = table.nodes.get(self._probe_queue.pop())
                if node is not None and node is not table.local and node.state in probeable:
                    return node
            self._probe_queue = [n.name for n in table.peers(*probeable)]
            random.shuffle(self._probe_queue)
        return None

    async def _gossip(self) -> None:
        table = self._require_table()
        if not len(table.broadcasts):
            return
        targets = table.gossip_targets()
        for node in random.sample(targets, min(self._config.gossip_nodes, len(targets))):
            extra = self._piggyback(UDP_BUDGET_BYTES - 3, MAX_MESSAGES_PER_PACKET)
            if not extra:
                return
            self._send_raw((node.addr, node.port), pack_compound(extra))

    async def _push_pull_random(self) -> None:
        peers = self._require_table().peers(Liveness.ALIVE)
        if peers:
            node = random.choice(peers)
            try:
                await self._push_pull(node.addr, node.port, join=False)
            except PEER_ERRORS as err:
                logger.debug("gossip push-pull failed name=%s err=%s", node.name, err)

    async def _reconnect(self) -> None:
        failed = self._require_table().peers(Liveness.DEAD)
        if failed:
            node = random.choice(failed)
            try:
                await self._push_pull(node.addr, node.port, join=False)
                logger.info("gossip reconnected name=%s", node.name)
            except PEER_ERRORS as err:
                logger.debug("gossip reconnect failed name=%s err=%s", node.name, err)

    # --- TCP push-pull ----------------------------------------------------------------------

    async def _join_one(self, address: str) -> bool:
        try:
            host, port = parse_host_port(address)
        except ConfigError as err:
            logger.warning("gossip join skipped address=%s err=%s", address, err)
            return False
        try:
            async with asyncio.timeout(self._config.tcp_timeout):
                infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError) as err:
            logger.warning("gossip join failed address=%s err=cannot resolve: %s", address, err)
            return False
        last: BaseException | None = None
        for ip in dict.fromkeys(str(info[4][0]) for info in infos):
            try:
                await self._push_pull(ip, port, join=True)
                return True
            except PEER_ERRORS as err:
                last = err
        logger.warning("gossip join failed address=%s err=%s", address, last or "no address")
        return False

    async def _push_pull(self, host: str, port: int, *, join: bool) -> None:
        await push_pull(
            host,
            port,
            table=self._require_table(),
            envelope=self._envelope,
            join=join,
            timeout=self._config.tcp_timeout,
        )

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        peer = writer.get_extra_info("peername")
        if self._stopped or task is None or self._tcp_conns >= MAX_TCP_CONNS:
            if not self._stopped:
                self._drops.warning("tcp:busy", "gossip refused tcp connection src=%s", peer)
            writer.close()
            return
        self._tasks.adopt(task)
        self._tcp_conns += 1
        try:
            await answer_push_pull(
                reader,
                writer,
                table=self._require_table(),
                envelope=self._envelope,
                timeout=self._config.tcp_timeout,
            )
        except BAD_INPUT_ERRORS as err:
            self._drops.warning(
                f"tcp:{type(err).__name__}:{getattr(err, 'reason', '')}",
                "gossip dropped tcp input src=%s err=%s",
                peer,
                err,
            )
        except (OSError, TimeoutError) as err:
            logger.debug("gossip tcp connection error src=%s err=%s", peer, err)
        finally:
            self._tcp_conns -= 1
            writer.close()

    # --- UDP --------------------------------------------------------------------------------

    def _on_packet(self, data: bytes, src: tuple[str, int]) -> None:
        if self._stopped or self._table is None:
            return
        try:
            if len(data) > MAX_UDP_PACKET_BYTES:
                raise MessageError("packet too large")
            messages = decode_packet(self._envelope.open(data, _UDP))
        except (EnvelopeError, MessageError) as err:
            self._drops.warning(
                f"udp:{type(err).__name__}:{getattr(err, 'reason', '')}",
                "gossip dropped udp packet src=%s:%d err=%s",
                src[0],
                src[1],
                err,
            )
            return
        for msg in messages:
            self._handle_udp(msg, src)

    def _handle_udp(self, msg: Message, src: tuple[str, int]) -> None:
        table = self._require_table()
        match msg:
            case Ping():
                if msg.target and msg.target != table.local.name:
                    logger.debug("gossip ping for another name target=%s", msg.target)
                    return
                self._send(src, Ack(seq=msg.seq, source=table.local.name))
            case Ack():
                fut = self._acks.get(msg.seq)
                if fut is not None and not fut.done():
                    fut.set_result(None)
            case PingReq():
                if len(self._tasks) < MAX_PENDING_TASKS:
                    self._tasks.spawn(self._relay_ping(msg, src), "gossip-relay-ping")
                else:
                    self._drops.warning("ping-req", "gossip dropped ping-req src=%s:%d", *src)
            case _:
                table.handle(msg)

    async def _relay_ping(self, req: PingReq, src: tuple[str, int]) -> None:
        table = self._require_table()
        seq, fut = self._new_ack()
        try:
            self._send((req.addr, req.port), Ping(seq=seq, target=req.target, source=table.local.name))
            target = table.nodes.get(req.target)
            tags = target.tags if target is not None else {}
            async with asyncio.timeout(self._config.probe_timeout_for(tags)):
                await fut
            self._send(src, Ack(seq=req.seq, source=table.local.name))
        except TimeoutError:
            pass
        finally:
            self._acks.pop(seq, None)

    def _send(self, dst: tuple[str, int], msg: Message) -> None:
        """Send ``msg`` with as many queued updates piggy-backed as fit."""
        encoded = encode_message(msg)
        extra = self._piggyback(UDP_BUDGET_BYTES - 3 - len(encoded), MAX_MESSAGES_PER_PACKET - 1)
        self._send_raw(dst, pack_compound([encoded, *extra]))

    def _send_raw(self, dst: tuple[str, int], payload: bytes) -> None:
        if self._udp is not None and not self._stopped:
            self._udp.send(self._envelope.seal(payload, _UDP), dst)

    def _send_to_peers(self, msg: Message) -> None:
        table = self._require_table()
        peers = table.peers(Liveness.ALIVE, Liveness.SUSPECT)
        for node in random.sample(peers, min(MAX_DIRECT_SENDS, len(peers))):
            self._send_raw((node.addr, node.port), pack_compound([encode_message(msg)]))

    def _piggyback(self, budget: int, max_items: int) -> list[bytes]:
        table = self._require_table()
        return table.broadcasts.get(budget, max_items, max(1, table.live_count()))

    # --- helpers ----------------------------------------------------------------------------

    def _new_ack(self) -> tuple[int, asyncio.Future[None]]:
        self._seq = (self._seq + 1) % (1 << 62)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._acks[self._seq] = fut
        return self._seq, fut

    def _emit(self, event: MemberEvent) -> None:
        if self._on_event is not None:
            asyncio.get_running_loop().call_soon(self._deliver, event)

    def _deliver(self, event: MemberEvent) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:
            logger.exception("gossip event handler failed kind=%s", event.kind)

    def _require_table(self) -> MemberTable:
        if self._table is None:
            raise NomaddError("gossip: not started")
        return self._table
