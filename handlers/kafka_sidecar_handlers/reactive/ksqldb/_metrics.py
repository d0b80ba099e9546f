"""ksqlDB consumer metrics, reported to the metrics plugin's registry (when a ``metrics`` handler is in a chain).

Nothing per row: once a second the consumer's counters are turned into ``kafka_sidecar_ksqldb_rows_total``
(``{consumer, stage="received"|"delivered"}``), ``kafka_sidecar_ksqldb_resubscribes_total`` and the state
gauge ``kafka_sidecar_ksqldb_state{consumer, state}`` (1 for the current state, 0 for the others seen).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from kafka_sidecar.plugin import MetricsRegistry, cancel_and_wait

if TYPE_CHECKING:
    from kafka_sidecar_handlers.reactive.ksqldb._consumer import KsqlDbConsumer

INTERVAL_S = 1.0


class KsqlDbMetrics:
    def __init__(self, registry: MetricsRegistry, consumer: KsqlDbConsumer) -> None:
        self._consumer = consumer
        self._rows = registry.counter("kafka_sidecar_ksqldb_rows_total", "ksqlDB consumer rows.", ("consumer", "stage"))
        self._resubscribes = registry.counter(
            "kafka_sidecar_ksqldb_resubscribes_total", "Push queries subscribed again.", ("consumer",)
        )
        self._state = registry.gauge("kafka_sidecar_ksqldb_state", "1 for the consumer's state.", ("consumer", "state"))
        self._seen: dict[str, float] = {}
        self._states: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"ksqldb-{self._consumer.name}-metrics")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        self.report()

    async def _run(self) -> None:
        while True:
            self.report()
            await asyncio.sleep(INTERVAL_S)

    def report(self) -> None:
        consumer = self._consumer
        name = consumer.name
        push = consumer.push
        totals = {"resubscribes": float(push.resubscribes if push else 0)}
        if push is not None:
            totals["received"] = float(push.rows_received)
            totals["delivered"] = float(sum(w.stats.delivered for w in push.workers.values()))
        elif consumer.delivery is not None and consumer.delivery.runtime is not None:
            delivered = sum(w.stats.delivered for w in consumer.delivery.runtime.workers.values())
            totals["delivered"] = float(delivered)
        for key, total in totals.items():
            delta = total - self._seen.get(key, 0.0)
            if delta <= 0:
                continue  # a restart starts counting again; counters never go down
            self._seen[key] = total
            if key == "resubscribes":
                self._resubscribes.inc(name, amount=delta)
            else:
                self._rows.inc(name, key, amount=delta)
        state = consumer.current_state
        self._states.add(state)
        for known in self._states:
            self._state.set(name, known, value=1.0 if known == state else 0.0)

    def reset(self) -> None:
        """The consumer started over: its own counters restart from zero."""
        self._seen.clear()
