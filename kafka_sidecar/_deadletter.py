"""Writing records to dead-letter topics: one writer for the active and the reactive consumer.

A dead letter keeps the original key, value bytes and headers, and adds headers saying where it came
from and why. :meth:`DeadLetterWriter.write` returns only after the broker acknowledged or refused
each record, so a caller commits source offsets only for what is safely stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kafka_sidecar._events import DeadLettered, EventBus
from kafka_sidecar._kafka.producer import ProducerService
from kafka_sidecar._records import ConsumedRecord, DeliveryReport, OutgoingRecord

DEFAULT_SUFFIX = ".dlq"
HEADER_SOURCE_TOPIC = "x-dlq-source-topic"
HEADER_SOURCE_PARTITION = "x-dlq-source-partition"
HEADER_SOURCE_OFFSET = "x-dlq-source-offset"
HEADER_SOURCE_TIMESTAMP = "x-dlq-source-timestamp"
HEADER_ATTEMPTS = "x-dlq-attempts"
HEADER_ERROR = "x-dlq-error"
HEADER_CONSUMER = "x-dlq-consumer"
DLQ_HEADERS = frozenset(
    {
        HEADER_SOURCE_TOPIC, HEADER_SOURCE_PARTITION, HEADER_SOURCE_OFFSET, HEADER_SOURCE_TIMESTAMP,
        HEADER_ATTEMPTS, HEADER_ERROR, HEADER_CONSUMER,
    }
)  # fmt: skip
MAX_ERROR_BYTES = 4096


@dataclass(frozen=True, slots=True)
class DeadLetter:
    record: ConsumedRecord
    error: str
    attempts: int = 1
    consumer: str | None = None


def dead_letter_topic(source_topic: str, suffix: str = DEFAULT_SUFFIX) -> str:
    """``orders`` -> ``orders.dlq``; a record already in a dead-letter topic stays in it."""
    return source_topic if source_topic.endswith(suffix) else source_topic + suffix


def dead_letter_record(letter: DeadLetter, suffix: str = DEFAULT_SUFFIX) -> OutgoingRecord:
    record = letter.record
    kept = tuple((k, v) for k, v in record.headers if k.lower() not in DLQ_HEADERS)
    added = (
        (HEADER_SOURCE_TOPIC, record.topic.encode()),
        (HEADER_SOURCE_PARTITION, str(record.partition).encode()),
        (HEADER_SOURCE_OFFSET, str(record.offset).encode()),
        (HEADER_SOURCE_TIMESTAMP, str(record.timestamp_ms).encode()),
        (HEADER_ATTEMPTS, str(letter.attempts).encode()),
        (HEADER_ERROR, letter.error.encode("utf-8")[:MAX_ERROR_BYTES]),
        *(((HEADER_CONSUMER, letter.consumer.encode()),) if letter.consumer else ()),
    )
    return OutgoingRecord(
        topic=dead_letter_topic(record.topic, suffix),
        key=record.key,
        value=record.value,
        headers=(*kept, *added),
        timestamp_ms=record.timestamp_ms if record.timestamp_ms > 0 else None,
    )


class DeadLetterWriter:
    """Sends dead letters through the shared producer and reports each one on the event bus."""

    def __init__(self, producer: ProducerService, events: EventBus, suffix: str = DEFAULT_SUFFIX) -> None:
        self._producer = producer
        self._events = events
        self.suffix = suffix

    async def write(self, letters: Sequence[DeadLetter], suffix: str | None = None) -> list[DeliveryReport]:
        """Write every letter; the reports say, in order, which ones the broker acknowledged."""
        use_suffix = suffix or self.suffix
        outgoing = [dead_letter_record(letter, use_suffix) for letter in letters]
        reports = await self._producer.send_batch(outgoing) if outgoing else []
        for letter, record, report in zip(letters, outgoing, reports, strict=True):
            self._events.publish(
                DeadLettered(
                    record=letter.record,
                    dead_letter_topic=record.topic,
                    partition=report.partition,
                    offset=report.offset,
                    error=letter.error if report.acknowledged else f"{letter.error}; DLQ write failed: {report.error}",
                    attempts=letter.attempts,
                    consumer=letter.consumer,
                    written=report.acknowledged,
                )
            )
        return reports
