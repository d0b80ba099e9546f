"""Dead letters: what a consumer could not deliver, and the pluggable sinks that keep them.

A sink (:class:`DeadLetterSink`) is registered by name through the ``kafka_sidecar_register_dead_letter_sinks``
hook; the Kafka topic writer (``kafka``: ``<topic><suffix>``, original key, value and headers plus
``x-dlq-*`` headers) is the default and is registered like any other. A consumer's config chooses
the sink. **Failure policy**: a sink answers, per letter, whether it stored it; a letter not stored
(or a sink that raises) is not committed at the source and is written again after a back-off, so a
record leaves the source only once it is delivered or safely dead-lettered. Every letter is
reported on the event bus (:class:`~kafka_sidecar._events.DeadLettered`) whichever sink took it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from kafka_sidecar._errors import ConfigError, ConfigProblem
from kafka_sidecar._events import DeadLettered, EventBus
from kafka_sidecar._kafka.producer import ProducerService
from kafka_sidecar._records import ConsumedRecord, DeliveryReport, OutgoingRecord

if TYPE_CHECKING:
    from kafka_sidecar._resources import Resources

log = logging.getLogger(__name__)
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
    """A record a consumer gives up on, why, after how many attempts, and which consumer."""

    record: ConsumedRecord
    error: str
    attempts: int = 1
    consumer: str | None = None


@dataclass(frozen=True, slots=True)
class DeadLetterReceipt:
    """A sink's answer for one letter: stored or not, and where (a topic, a table, a URL)."""

    stored: bool
    destination: str
    partition: int | None = None
    offset: int | None = None
    error: str | None = None


@runtime_checkable
class DeadLetterSink(Protocol):
    """Keeps dead letters somewhere. Answers one receipt per letter, in order; raising means none stored."""

    async def write(self, letters: Sequence[DeadLetter], suffix: str) -> Sequence[DeadLetterReceipt]:
        """Store ``letters``; ``suffix`` is the consumer's ``dead_letter_suffix`` (sinks may ignore it)."""
        ...


@dataclass(frozen=True, slots=True)
class DeadLetterSinkSpec:
    """A sink type a plugin offers; ``factory(resources)`` builds the sidecar's one instance of it."""

    name: str
    factory: Callable[[Resources], DeadLetterSink]
    description: str = ""


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
    """Writes dead letters to ``<topic><suffix>`` through the shared producer.

    :meth:`send` only writes (the ``kafka`` sink, :class:`KafkaTopicSink`, uses it; :class:`ReportingSink`
    reports the events); :meth:`write` also reports each letter on the event bus (the active consumer's
    dead-letter route, which answers with the topic, partition and offset of each letter).
    """

    def __init__(self, producer: ProducerService, events: EventBus, suffix: str = DEFAULT_SUFFIX) -> None:
        self._producer = producer
        self._events = events
        self.suffix = suffix

    async def send(self, letters: Sequence[DeadLetter], suffix: str | None = None) -> list[DeliveryReport]:
        """Write every letter; the reports say, in order, which ones the broker acknowledged."""
        use_suffix = suffix or self.suffix
        outgoing = [dead_letter_record(letter, use_suffix) for letter in letters]
        return await self._producer.send_batch(outgoing) if outgoing else []

    async def write(self, letters: Sequence[DeadLetter], suffix: str | None = None) -> list[DeliveryReport]:
        """Write every letter and publish a ``DeadLettered`` event for each."""
        reports = await self.send(letters, suffix)
        publish_dead_letters(self._events, letters, [receipt_of(report) for report in reports])
        return reports


def receipt_of(report: DeliveryReport) -> DeadLetterReceipt:
    return DeadLetterReceipt(report.acknowledged, report.topic, report.partition, report.offset, report.error)


class KafkaTopicSink:
    """The default sink (``kafka``), registered through the hook like any other."""

    def __init__(self, writer: DeadLetterWriter) -> None:
        self._writer = writer

    async def write(self, letters: Sequence[DeadLetter], suffix: str) -> list[DeadLetterReceipt]:
        return [receipt_of(report) for report in await self._writer.send(letters, suffix)]


def publish_dead_letters(
    events: EventBus, letters: Sequence[DeadLetter], receipts: Sequence[DeadLetterReceipt]
) -> None:
    for letter, receipt in zip(letters, receipts, strict=True):
        _log_letter(letter, receipt)
        error = letter.error if receipt.stored else f"{letter.error}; DLQ write failed: {receipt.error}"
        events.publish(
            DeadLettered(
                record=letter.record,
                dead_letter_topic=receipt.destination,
                partition=receipt.partition,
                offset=receipt.offset,
                error=error,
                attempts=letter.attempts,
                consumer=letter.consumer,
                written=receipt.stored,
            )
        )


def _log_letter(letter: DeadLetter, receipt: DeadLetterReceipt) -> None:
    """One line per dead letter, for the operator: where it came from, where it went, and why."""
    source = letter.record
    who = f"consumer {letter.consumer}: " if letter.consumer else ""
    if receipt.stored:
        where = receipt.destination
        if receipt.partition is not None:
            where += f"-{receipt.partition}@{receipt.offset}"
        log.warning("%sdead-lettered %s-%d@%d -> %s after %d attempt(s): %s", who, source.topic, source.partition,
                    source.offset, where, letter.attempts, letter.error)  # fmt: skip
    else:
        log.error("%sdead letter %s-%d@%d NOT stored in %s (%s), so not committed: %s", who, source.topic,
                  source.partition, source.offset, receipt.destination, receipt.error, letter.error)  # fmt: skip


class ReportingSink:
    """A sink as handlers use it: receipts checked (one per letter) and every letter reported as an event."""

    def __init__(self, name: str, sink: DeadLetterSink, events: EventBus) -> None:
        self.name = name
        self._sink = sink
        self._events = events

    async def write(self, letters: Sequence[DeadLetter], suffix: str) -> list[DeadLetterReceipt]:
        if not letters:
            return []
        try:
            receipts = list(await self._sink.write(letters, suffix))
            if len(receipts) != len(letters):
                raise ValueError(f"answered {len(receipts)} receipts for {len(letters)} letters")
        except Exception as exc:
            log.warning("dead-letter sink %r failed: %r", self.name, exc)
            receipts = [DeadLetterReceipt(False, self.name, error=f"sink {self.name!r} failed: {exc!r}")] * len(letters)
        publish_dead_letters(self._events, letters, receipts)
        return receipts


class DeadLetterSinks:
    """The registered sinks of one sidecar; each is built on first use (at assembly) and then shared."""

    def __init__(self, resources: Resources, specs: Sequence[DeadLetterSinkSpec]) -> None:
        self._resources = resources
        self._specs = {spec.name: spec for spec in specs}
        self._built: dict[str, ReportingSink] = {}

    def names(self) -> list[str]:
        return sorted(self._specs)

    def get(self, name: str, *, field: str = "dead_letter_sink") -> ReportingSink:
        """The sink registered as ``name``; an unknown name is a :class:`ConfigError` naming ``field``."""
        found = self._built.get(name)
        if found is not None:
            return found
        spec = self._specs.get(name)
        if spec is None:
            known = ", ".join(self.names()) or "none"
            raise ConfigError(
                [
                    ConfigProblem(
                        "<dead-letter-sinks>", 1, 1, field, f"no dead-letter sink {name!r} (registered: {known})"
                    )
                ]
            )
        sink = spec.factory(self._resources)
        if not isinstance(sink, DeadLetterSink):
            raise TypeError(f"dead-letter sink {name!r}: the factory returned {sink!r}, which has no write()")
        built = self._built[name] = ReportingSink(name, sink, self._resources.events)
        return built
