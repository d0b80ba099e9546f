"""The shared Kafka producer: connects in the background, sends batches, reports per-record acks.

The sidecar starts even when the broker is down (readiness says so); a produce before the first
connection fails at once with a 503, and every send is bounded by ``request_timeout_ms``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka import errors as kafka_errors

from kafka_sidecar._config.model import KafkaConfig
from kafka_sidecar._errors import KafkaUnavailable, NotFound, ValidationFailed
from kafka_sidecar._kafka.diagnose import diagnose_connection
from kafka_sidecar._kafka.options import producer_kwargs
from kafka_sidecar._records import DeliveryReport, OutgoingRecord

log = logging.getLogger(__name__)

ProducerFactory = Callable[..., Any]

# Per-record error codes in produce responses (Java sidecar / REST Proxy v2 compatible).
ERROR_NOT_AUTHENTICATED = 40101
ERROR_NOT_AUTHORIZED = 40301
ERROR_KAFKA = 50002
ERROR_KAFKA_RETRIABLE = 50003


def error_code_for(exc: BaseException) -> int:
    if isinstance(exc, kafka_errors.TopicAuthorizationFailedError | kafka_errors.ClusterAuthorizationFailedError):
        return ERROR_NOT_AUTHORIZED
    if isinstance(exc, kafka_errors.SaslAuthenticationFailed):
        return ERROR_NOT_AUTHENTICATED
    if getattr(exc, "retriable", False) or isinstance(exc, asyncio.TimeoutError):
        return ERROR_KAFKA_RETRIABLE
    return ERROR_KAFKA


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ProducerService:
    """One aiokafka producer shared by every handler that writes records (producer, DLQ, audit)."""

    def __init__(
        self, kafka: KafkaConfig, *, role: str = "producer", factory: ProducerFactory = AIOKafkaProducer
    ) -> None:
        self._kafka = kafka
        self._role = role
        self._factory = factory
        self._producer: Any = None
        self._connect_task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._stopping = asyncio.Event()
        self._last_error: BaseException | None = None
        self._timeout_s = kafka.producer.request_timeout_ms / 1000

    @property
    def connected(self) -> bool:
        return self._producer is not None

    @property
    def last_error(self) -> str | None:
        if self._last_error is None:
            return None
        if isinstance(self._last_error, KafkaUnavailable):
            return self._last_error.detail
        return describe(self._last_error)

    async def start(self) -> None:
        """Begin connecting in the background; never fails because the broker is down."""
        if self._connect_task is None:
            self._connect_task = asyncio.create_task(self._connect_loop(), name=f"kafka-{self._role}-connect")

    async def wait_connected(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _connect_loop(self) -> None:
        backoff = 0.2
        while not self._stopping.is_set():
            producer: Any = None
            try:
                producer = self._factory(**producer_kwargs(self._kafka, self._role))
                await asyncio.wait_for(producer.start(), self._kafka.connect_timeout_ms / 1000)
            except asyncio.CancelledError:
                if producer is not None:  # stopped while connecting: close what was half opened
                    await _stop_quietly(producer)
                raise
            except Exception as exc:
                self._last_error = await self._explain(exc)
                log.warning("Kafka producer cannot connect to %s: %s", self._kafka.bootstrap_servers, self.last_error)
                if producer is not None:
                    await _stop_quietly(producer)
                # Waiting on the stop event, not sleeping: aiokafka's stop() can swallow a cancellation,
                # so stopping must not depend on cancelling this task.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if self._stopping.is_set():
                await _stop_quietly(producer)
                return
            self._producer = producer
            self._last_error = None
            self._connected.set()
            log.info("Kafka producer connected to %s", self._kafka.bootstrap_servers)
            return

    async def _explain(self, exc: Exception) -> Exception:
        """aiokafka hides TLS and SASL causes behind 'Unable to bootstrap'; find the real one to report."""
        connection_failed: bool = isinstance(exc, kafka_errors.KafkaConnectionError)
        if not connection_failed or self._kafka.security.protocol == "PLAINTEXT":
            return exc
        try:
            reason = await diagnose_connection(self._kafka, self._kafka.connect_timeout_ms / 1000)
        except Exception:
            return exc
        return KafkaUnavailable(reason) if reason else exc

    async def stop(self, flush_timeout: float | None = None) -> None:
        """Flush what is buffered and close. Waits at most ``flush_timeout`` (default: the request timeout),
        because a record the broker has not taken by then would have failed anyway."""
        flush_timeout = self._timeout_s + 1 if flush_timeout is None else flush_timeout
        self._stopping.set()
        if self._connect_task is not None and not self._connect_task.done():
            self._connect_task.cancel()
            await asyncio.wait({self._connect_task}, timeout=self._kafka.connect_timeout_ms / 1000 + 1)
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await asyncio.wait_for(_stop_quietly(producer), flush_timeout)
            except TimeoutError:
                log.error("Kafka producer did not flush within %.0fs; unacknowledged records were not reported as sent",
                          flush_timeout)  # fmt: skip

    async def probe(self, timeout: float) -> str | None:
        """None when the broker answers a metadata request within ``timeout``; else the reason."""
        producer = self._producer
        if producer is None:
            return f"not connected to Kafka at {self._kafka.bootstrap_servers}: {self.last_error or 'connecting'}"
        try:
            ok = await asyncio.wait_for(producer.client.force_metadata_update(), timeout)
        except Exception as exc:
            return f"Kafka metadata request failed: {describe(exc)}"
        if not ok:
            return f"Kafka at {self._kafka.bootstrap_servers} did not answer a metadata request"
        return None

    async def partitions_for(self, topic: str) -> set[int]:
        producer = self._require()
        try:
            partitions: set[int] = await asyncio.wait_for(producer.partitions_for(topic), self._timeout_s + 1)
        except kafka_errors.UnknownTopicOrPartitionError as exc:
            # aiokafka says "unknown topic" whenever it has no metadata for it, a broker it cannot reach
            # included: only a broker that answers can tell us a topic is missing.
            unreachable = await self.probe(self._kafka.connect_timeout_ms / 1000)
            if unreachable is not None:
                raise KafkaUnavailable(f"no metadata for topic {topic!r}: {unreachable}") from exc
            raise NotFound(f"topic {topic!r} does not exist", field="topic", v2_error_code=40401) from exc
        except kafka_errors.TopicAuthorizationFailedError as exc:
            raise NotFound(f"topic {topic!r} is not accessible: not authorized", field="topic") from exc
        except (TimeoutError, kafka_errors.KafkaError) as exc:
            raise KafkaUnavailable(f"no metadata for topic {topic!r}: {describe(exc)}") from exc
        return partitions

    async def send_batch(self, records: Sequence[OutgoingRecord]) -> list[DeliveryReport]:
        """Send every record, wait for every ack or failure, and report them in order."""
        producer = self._require()
        max_size = self._kafka.producer.max_request_size
        for index, record in enumerate(records):
            size = len(record.key or b"") + len(record.value or b"") + sum(len(k) + len(v) for k, v in record.headers)
            if size > max_size:
                raise ValidationFailed(
                    f"record is {size} bytes, more than max_request_size {max_size}",
                    field=f"records[{index}]",
                )
        pending: list[asyncio.Future[Any] | BaseException] = []
        for record in records:
            try:
                pending.append(
                    await producer.send(
                        record.topic,
                        value=record.value,
                        key=record.key,
                        partition=record.partition,
                        timestamp_ms=record.timestamp_ms,
                        headers=list(record.headers) or None,
                    )
                )
            except Exception as exc:
                pending.append(exc)
        futures = [p for p in pending if isinstance(p, asyncio.Future)]
        if futures:
            # aiokafka does not always expire a batch while its broker is unreachable: bound the wait ourselves.
            await asyncio.wait(futures, timeout=self._timeout_s + 1)
        return [_report(record, outcome) for record, outcome in zip(records, pending, strict=True)]

    def _require(self) -> Any:
        if self._producer is None:
            raise KafkaUnavailable(
                f"not connected to Kafka at {self._kafka.bootstrap_servers}: {self.last_error or 'connecting'}"
            )
        return self._producer


def _report(record: OutgoingRecord, outcome: asyncio.Future[Any] | BaseException) -> DeliveryReport:
    if isinstance(outcome, BaseException):
        return DeliveryReport(record.topic, record.partition, None, error_code_for(outcome), describe(outcome))
    if not outcome.done():
        outcome.cancel()
        return DeliveryReport(record.topic, record.partition, None, ERROR_KAFKA_RETRIABLE, "timed out waiting for ack")
    exc = outcome.exception()
    if exc is not None:
        return DeliveryReport(record.topic, record.partition, None, error_code_for(exc), describe(exc))
    metadata = outcome.result()
    return DeliveryReport(record.topic, metadata.partition, metadata.offset, timestamp_ms=metadata.timestamp)


async def _stop_quietly(producer: Any) -> None:
    try:
        await producer.stop()
    except Exception as exc:
        log.debug("stopping a Kafka producer failed: %s", describe(exc))
