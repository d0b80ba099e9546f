"""Push mode: one push query over ``/query-stream``, its rows fed to the reactive delivery path.

* Lines, not chunks: HTTP/2 DATA frames (and HTTP/1.1 chunks) coalesce and split; httpx's line reader
  reassembles rows.
* Bounded: a worker with ``max_buffered_records`` undelivered rows stops the reading; HTTP/2 flow control
  then pushes back to ksqlDB (its query queue and Kafka Streams thread wait too).
* Any end of the stream (EOF, transport error, an in-stream error element) means subscribe again after a
  capped exponential backoff. Without resume, rows produced while disconnected may be missed
  (``auto.offset.reset: latest``) or come again (``earliest``): ``gap_possible`` says so.
* ``resume: source-offsets``: the query also selects ``ROWPARTITION, ROWOFFSET``; each row becomes a record
  of that source partition and offset, checkpoints hold the next offset per partition once everything before
  it is final, and a new subscription reads from ``earliest`` and drops rows below the checkpoint.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

from kafka_sidecar.plugin import BatchFetched, ConsumedRecord, SidecarError, UpstreamRejected, cancel_and_wait
from kafka_sidecar_handlers.reactive._partition import PartitionWorker
from kafka_sidecar_handlers.reactive.ksqldb._checkpoint import CheckpointStore
from kafka_sidecar_handlers.reactive.ksqldb._client import KsqlDbClient
from kafka_sidecar_handlers.reactive.ksqldb._config import KsqlDbConsumerConfig
from kafka_sidecar_handlers.reactive.ksqldb._rows import (
    OFFSET_COLUMN,
    PARTITION_COLUMN,
    QueryHeader,
    StreamError,
    parse_header,
    parse_rows,
    with_source_offsets,
)

if TYPE_CHECKING:
    from kafka_sidecar_handlers.reactive import ReactiveConsumer

log = logging.getLogger(__name__)
CHECKPOINT_INTERVAL_S = 0.2


class PushSubscription:
    """The live state of a push-mode consumer (what ``GET /admin/ksqldb/{name}`` shows)."""

    def __init__(
        self,
        name: str,
        config: KsqlDbConsumerConfig,
        client: KsqlDbClient,
        delivery: ReactiveConsumer,
        checkpoints: CheckpointStore | None,
        publish: Callable[[BatchFetched], None],
        offset_reset: str | None = None,
    ) -> None:
        self.name = name
        self.config = config
        # The query's properties; a restart's offset reset (admin ``restart``) overrides the configured one.
        self.properties: dict[str, object] = dict(config.properties)
        if offset_reset is not None:
            self.properties["auto.offset.reset"] = offset_reset
        self.client = client
        self.delivery = delivery
        self.checkpoints = checkpoints
        self._publish = publish
        self.topic = delivery.config.topics[0]
        self.state = "subscribing"
        self.header: QueryHeader | None = None
        self.rows_received = 0
        self.rows_skipped = 0
        self.resubscribes = 0
        self.gap_possible = False
        self.duplicates_possible = False
        self.last_error: str | None = None
        self.error_code: int | None = None
        self.last_row_at: float | None = None
        self.workers: dict[int, PartitionWorker] = {}
        self.checkpoint: dict[int, int] = {}
        self._sequence = 0
        self._streamed = False
        self._space = asyncio.Event()
        self._running = asyncio.Event()
        self._running.set()
        self._checkpoint_wanted = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._subscribe_loop(), name=f"ksqldb-{self.name}-push"))
        if self.checkpoints is not None:
            self._tasks.append(asyncio.create_task(self._checkpoint_loop(), name=f"ksqldb-{self.name}-checkpoint"))

    async def stop(self, drain_timeout: float) -> None:
        for task in self._tasks[:1]:
            await cancel_and_wait(task)
        workers = list(self.workers.values())
        await asyncio.gather(*(w.quiesce(drain_timeout) for w in workers))
        await asyncio.gather(*(w.close() for w in workers))
        if self.checkpoints is not None:
            await self._save_checkpoint()
        for task in self._tasks[1:]:
            await cancel_and_wait(task)
        self._tasks.clear()
        self.state = "stopped"

    def set_paused(self, paused: bool) -> None:
        """Stop reading the stream (HTTP/2 flow control holds ksqlDB back) and stop delivering, or go on."""
        for worker in self.workers.values():
            worker.admin_paused = paused
            if not paused:
                worker.wake()
        if paused:
            self._running.clear()
            if self.state == "streaming":
                self.state = "paused"
        else:
            self._running.set()
            if self.state == "paused":
                self.state = "streaming"

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    # -- reading ---------------------------------------------------------------------------------

    async def _subscribe_loop(self) -> None:
        wait = self.config.reconnect_initial_ms / 1000
        subscribed_before = False
        while True:
            await self._running.wait()
            self.state = "subscribing"
            self._streamed = False
            try:
                await self._subscribe()
                self.last_error = "the push query ended (EOF)"
            except asyncio.CancelledError:
                raise
            except UpstreamRejected as exc:  # the query itself is refused: final until an operator's restart
                self.state = "failed"
                self.last_error = exc.detail
                code = exc.extra.get("ksqldb_error_code")
                self.error_code = code if isinstance(code, int) else None
                log.error("ksqlDB consumer %s: the push query was rejected: %s", self.name, exc.detail)
                return
            except StreamError as exc:
                self.last_error = str(exc)
            except SidecarError as exc:
                self.last_error = exc.detail
            except (httpx.HTTPError, ValueError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
            except Exception as exc:  # never let the subscription die: report, back off, try again
                log.exception("ksqlDB consumer %s: subscription failed", self.name)
                self.last_error = f"{type(exc).__name__}: {exc}"
            if self._streamed or subscribed_before:
                self._note_disconnect()
            subscribed_before = subscribed_before or self._streamed
            if self._streamed:
                wait = self.config.reconnect_initial_ms / 1000
            log.warning("ksqlDB consumer %s: %s; subscribing again in %.1fs", self.name, self.last_error, wait)
            self.state = "backoff"
            await asyncio.sleep(wait)
            wait = min(wait * 2, self.config.reconnect_max_ms / 1000)

    def _note_disconnect(self) -> None:
        self.resubscribes += 1
        if self.checkpoints is not None:
            return  # resume: source-offsets reads on from the checkpoint
        if str(self.properties.get("auto.offset.reset", "latest")) == "earliest":
            self.duplicates_possible = True
        else:
            self.gap_possible = True

    async def _subscribe(self) -> None:
        """One subscription, until the stream ends (``_streamed``: its header had arrived)."""
        properties = dict(self.properties)
        sql = self.config.query
        partition_index = offset_index = -1
        if self.checkpoints is not None:
            self.checkpoint = await self.checkpoints.load()
            properties["auto.offset.reset"] = "earliest"
            sql = with_source_offsets(sql)
        query_id: str | None = None
        async with self.client.stream(sql, properties) as groups:
            try:
                first = await anext(groups)
                header = parse_header(first[0])
                query_id = header.query_id
                names = header.column_names
                if self.checkpoints is not None:
                    partition_index = names.index(PARTITION_COLUMN, len(names) - 2)
                    offset_index = names.index(OFFSET_COLUMN, len(names) - 2)
                    header = QueryHeader(header.query_id, names[:-2], header.column_types[:-2])
                self.header = header
                self._streamed = True
                self.state = "paused" if self.paused else "streaming"
                self.last_error = None
                if len(first) > 1:
                    await self._take(first[1:], header.column_names, partition_index, offset_index)
                async for group in groups:
                    await self._take(group, header.column_names, partition_index, offset_index)
            finally:
                if query_id is not None:
                    await self.client.close_query(query_id)

    async def _take(self, lines: list[bytes], names: tuple[str, ...], partition_index: int, offset_index: int) -> None:
        """Turn a group of lines into records and hand them to the workers, never above the buffer limit."""
        started_ns = time.time_ns()
        rows, error = parse_rows(lines)
        self.rows_received += len(rows)
        now = time.time()
        timestamp = int(now * 1000)
        topic = self.topic
        by_partition: dict[int, list[ConsumedRecord]] = {}
        dumps = json.dumps  # default separators: the module's cached encoder, no encoder built per row
        for values in rows:
            if partition_index >= 0:
                partition, offset = int(values[partition_index]), int(values[offset_index])  # type: ignore[call-overload]
                values = values[:-2]
                if offset < self.checkpoint.get(partition, 0):
                    self.rows_skipped += 1
                    continue
            else:
                partition, offset = 0, self._sequence
                self._sequence += 1
            value = dumps(dict(zip(names, values, strict=False))).encode()
            by_partition.setdefault(partition, []).append(
                ConsumedRecord(topic, partition, offset, timestamp, None, value, ())
            )
        if rows:
            self.last_row_at = now
        limit = self.delivery.config.max_buffered_records
        for partition, records in by_partition.items():
            worker = self._worker(partition)
            count = len(records)
            while records:
                await self._wait_for_room(worker, limit)
                room = limit - worker.buffered
                worker.offer(records[:room])
                records = records[room:]
            self._publish(BatchFetched(self.name, self.delivery.config.group, ((topic, partition, count),),
                                       started_ns, time.time_ns()))  # fmt: skip
        if error is not None:
            raise error

    async def _wait_for_room(self, worker: PartitionWorker, limit: int) -> None:
        """Wait while the consumer is paused or the worker's buffer is full (then until half drained)."""
        if self._running.is_set() and worker.buffered < limit:
            return
        while not self._running.is_set() or worker.buffered > limit // 2:
            if not self._running.is_set():
                self.state = "paused"
                await self._running.wait()
                continue
            self._space.clear()
            await self._space.wait()
        self.state = "streaming"

    def _worker(self, partition: int) -> PartitionWorker:
        worker = self.workers.get(partition)
        if worker is None:
            worker = self.delivery.new_worker(self.topic, partition, self._on_change)
            worker.admin_paused = self.paused
            if partition in self.checkpoint:
                worker.tracker.reset(self.checkpoint[partition])
            self.workers[partition] = worker
            worker.start()
        return worker

    def _on_change(self, worker: PartitionWorker) -> None:
        self._space.set()
        if self.checkpoints is not None:
            committable = worker.tracker.committable()
            if committable is not None and committable != worker.last_committed:
                self._checkpoint_wanted.set()

    # -- checkpoints -----------------------------------------------------------------------------

    async def _checkpoint_loop(self) -> None:
        while True:
            await self._checkpoint_wanted.wait()
            self._checkpoint_wanted.clear()
            await self._save_checkpoint()
            await asyncio.sleep(CHECKPOINT_INTERVAL_S)  # at most one checkpoint write per interval

    async def _save_checkpoint(self) -> None:
        assert self.checkpoints is not None
        positions = dict(self.checkpoint)
        changed = False
        for partition, worker in self.workers.items():
            committable = worker.tracker.committable()
            if committable is not None and committable != worker.last_committed:
                positions[partition] = committable
                changed = True
        if not changed:
            return
        try:
            saved = await self.checkpoints.save(positions)
        except Exception as exc:
            saved = False
            self.last_error = f"checkpoint write failed: {type(exc).__name__}: {exc}"
        if not saved:
            log.warning("ksqlDB consumer %s: checkpoint not acknowledged; retried with the next progress", self.name)
            return
        self.checkpoint = positions
        for partition, worker in self.workers.items():
            worker.last_committed = positions.get(partition, worker.last_committed)

    def seek_beginning(self) -> None:
        """Forget the checkpoint: the next subscription delivers the source from its beginning."""
        self.checkpoint = {}
        for worker in self.workers.values():
            worker.clear_buffer(None)

    @staticmethod
    def idle_status() -> dict[str, object]:
        """The push status keys before the first subscription."""
        return {
            "query_id": None, "columns": None, "rows_received": 0, "rows_delivered": 0, "rows_dropped": 0,
            "rows_dead_lettered": 0, "rows_skipped_below_checkpoint": 0, "buffered": 0, "resubscribes": 0,
            "gap_possible": False, "duplicates_possible": False, "checkpoint": None, "last_row_at": None,
        }  # fmt: skip

    def status(self) -> dict[str, object]:
        delivered = sum(w.stats.delivered for w in self.workers.values())
        return {
            "query_id": self.header.query_id if self.header else None,
            "columns": self.header.describe() if self.header else None,
            "rows_received": self.rows_received,
            "rows_delivered": delivered,
            "rows_dropped": sum(w.stats.dropped for w in self.workers.values()),
            "rows_dead_lettered": sum(w.stats.dead_lettered for w in self.workers.values()),
            "rows_skipped_below_checkpoint": self.rows_skipped,
            "buffered": sum(w.buffered for w in self.workers.values()),
            "resubscribes": self.resubscribes,
            "gap_possible": self.gap_possible,
            "duplicates_possible": self.duplicates_possible,
            "checkpoint": {str(p): o for p, o in sorted(self.checkpoint.items())} if self.checkpoints else None,
            "last_row_at": self.last_row_at,
        }
