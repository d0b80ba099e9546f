"""Delivering one batch until every record has a final outcome: the retry and dead-letter policy.

Each attempt is a fresh :class:`Exchange` through the consumer's chain, so tracing, audit and metrics
middleware see every attempt. A record is *final* when the backend said SUCCESS or DROP, or when it is
acknowledged in the dead-letter topic (DEADLETTER, retries exhausted, or undecodable). Only final
records are reported through ``on_final``; the caller commits from those alone.

Failures that are not the records' fault do not use up attempts: when the backend refuses the
connection, or a record cannot be decoded *for now* (a schema registry is unreachable), delivery waits
with capped backoff and tries again. Everything else (5xx, timeout, malformed reply, a
failing middleware) counts as an attempt for every record still pending.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Literal, cast

from kafka_sidecar.plugin import (
    DELIVERED,
    AddedHeaders,
    Chain,
    ConsumedRecord,
    DeadLetter,
    Exchange,
    RecordOutcome,
    RecordUndecodable,
    ReportingSink,
    Serde,
    StashKey,
    UniformOutcomes,
    is_json_text,
    json_texts,
)
from kafka_sidecar_handlers.reactive._backend import REASON_CONNECT, RawJson, failure_reason
from kafka_sidecar_handlers.reactive._config import RetryPolicy

log = logging.getLogger(__name__)

RecordId = tuple[str, int, int]
DECODED: StashKey[dict[RecordId, tuple[object, object]]] = StashKey("reactive-decoded")
"""Decoded (key, value) per record of the exchange, keyed by (topic, partition, offset)."""
AS_IS: StashKey[Sequence[ConsumedRecord]] = StashKey("reactive-json-as-is")
"""The exchange's records when every key and value is JSON text or null (json formats, checked for the
whole batch): the terminal splices their bytes as they are, with no decoded entry per record."""
_KEY, _VALUE = attrgetter("key"), attrgetter("value")

OnFinal = Callable[[Sequence[ConsumedRecord], str], None]
"""Told which records became final, with which status (SUCCESS, DROP, DEADLETTER); the caller commits from these."""

UNREACHABLE_MAX_WAIT_S = 5.0
DLQ_RETRY_MAX_WAIT_S = 5.0


def record_id(record: ConsumedRecord) -> RecordId:
    return (record.topic, record.partition, record.offset)


@dataclass(slots=True)
class DeliveryStats:
    """Counters one partition reports to the control API."""

    delivered: int = 0
    dropped: int = 0
    dead_lettered: int = 0
    retried: int = 0
    failed_attempts: int = 0
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryContext:
    consumer: str
    chain: Chain
    key_serde: Serde
    value_serde: Serde
    dead_letters: ReportingSink
    retry: RetryPolicy
    dead_letter_suffix: str
    wait_healthy: Callable[[], Awaitable[object]]
    last_attempt: bool = field(default=False)
    """DLQ replay with 'last attempt': what still fails is dropped (reported), not written back."""


async def deliver_batch(
    ctx: DeliveryContext,
    batch: Sequence[ConsumedRecord],
    on_final: OnFinal,
    stats: DeliveryStats,
) -> None:
    """Return once every record of ``batch`` is final; ``on_final(records, status)`` in no fixed order (each
    record once; a whole batch the backend accepted at once in one call, in offset order)."""
    pending: Sequence[ConsumedRecord] = batch
    decoded: dict[RecordId, tuple[object, object]] = {}
    added = AddedHeaders()  # what middleware adds to the records, kept across the batch's attempts
    as_is = _json_as_is(ctx, batch)  # the common case: nothing to decode, nothing undecodable
    attempt = 0
    unreachable = 0
    while pending:
        await ctx.wait_healthy()
        letters: list[DeadLetter] = []
        decode_error: str | None = None
        if not as_is:
            letters, pending, decode_error = await _decode(ctx, pending, decoded, attempt + 1)
            await _dead_letter(ctx, letters, on_final, stats, added)
            if not pending:
                return
        outcomes = (
            None if decode_error is not None else await _attempt(ctx, pending, decoded, added, attempt + 1, as_is)
        )
        if outcomes is None or isinstance(outcomes, str):
            # not the records' fault (a schema registry or the backend cannot be reached): wait, no attempt used
            if decode_error is not None:
                stats.last_error = decode_error
                log.warning("consumer %s: %s; delivery waits", ctx.consumer, decode_error)
            unreachable += 1
            await asyncio.sleep(min(ctx.retry.backoff_s(unreachable), UNREACHABLE_MAX_WAIT_S))
            continue
        unreachable = 0
        attempt += 1
        pending = await _settle(ctx, outcomes, attempt, on_final, stats, added)
        if pending:
            stats.retried += len(pending)
            await asyncio.sleep(ctx.retry.backoff_s(attempt))


def _json_as_is(ctx: DeliveryContext, records: Sequence[ConsumedRecord]) -> bool:
    """Both formats json and every key and value JSON text (checked in C) or null."""
    if ctx.key_serde.name != "json" or ctx.value_serde.name != "json":
        return False
    return _all_json_or_null(list(map(_KEY, records))) and _all_json_or_null(list(map(_VALUE, records)))


def _all_json_or_null(texts: list[bytes | None]) -> bool:
    """Every one JSON text (:func:`is_json_text`) or None: one C call per text, no Python frame."""
    present = [text for text in texts if text is not None] if None in texts else texts
    return json_texts(cast("list[bytes]", present)) is not None


async def _decode(
    ctx: DeliveryContext,
    records: Sequence[ConsumedRecord],
    decoded: dict[RecordId, tuple[object, object]],
    attempt: int,
) -> tuple[list[DeadLetter], Sequence[ConsumedRecord], str | None]:
    """Decode what is not yet decoded: undecodable records become dead letters at once (``records``
    itself comes back when every record is kept)."""
    letters: list[DeadLetter] = []
    keep: list[ConsumedRecord] = []
    transient: str | None = None
    for record in records:
        rid = record_id(record)
        if rid not in decoded:
            key, value = _spliced(ctx.key_serde, record.key), _spliced(ctx.value_serde, record.value)
            if key is not _LATER and value is not _LATER:
                decoded[rid] = (key, value)  # the common case, without a coroutine per record
                keep.append(record)
                continue
            try:
                decoded[rid] = await decode_pair(ctx.key_serde, ctx.value_serde, record)
            except RecordUndecodable as exc:
                letters.append(DeadLetter(record, f"undecodable: {exc.detail}", attempt, ctx.consumer))
                continue
            except Exception as exc:
                transient = f"decoding failed: {type(exc).__name__}: {exc}"
                keep.append(record)
                continue
        keep.append(record)
    return letters, (records if len(keep) == len(records) else keep), transient


async def decode_pair(key_serde: Serde, value_serde: Serde, record: ConsumedRecord) -> tuple[object, object]:
    """The record's key and value as the backend gets them; raises RecordUndecodable."""
    key = await _decoded(key_serde, record, record.key, "key")
    return key, await _decoded(value_serde, record, record.value, "value")


_LATER = object()
"""What :func:`_spliced` returns when the serde has to decode."""


def _spliced(serde: Serde, data: bytes | None) -> object:
    """A json-format key or value at once: JSON text as it is, a tombstone as None; else ``_LATER``."""
    if serde.name != "json":
        return _LATER
    if data is None:
        return None
    return RawJson(data) if is_json_text(data) else _LATER


async def _decoded(serde: Serde, record: ConsumedRecord, data: bytes | None, role: Literal["key", "value"]) -> object:
    """JSON text is checked in C and passed on as it is (never decoded, never re-encoded); anything else
    (other formats, a tombstone, JSON only the stdlib parser accepts) is decoded by the serde."""
    if data is not None and serde.name == "json" and is_json_text(data):
        return RawJson(data)
    return await serde.decode(data, record.topic, role)


def _what_next(ctx: DeliveryContext, attempt: int) -> str:
    """What happens to the pending records after attempt number ``attempt`` failed as a whole."""
    if attempt < ctx.retry.max_attempts:
        return f"the batch will be retried (attempt {attempt} of {ctx.retry.max_attempts})"
    if ctx.last_attempt:
        return f"that was the last attempt ({attempt} of {ctx.retry.max_attempts}); its records are dropped"
    return f"that was the last attempt ({attempt} of {ctx.retry.max_attempts}); its records go to the dead-letter topic"


async def _attempt(
    ctx: DeliveryContext,
    pending: Sequence[ConsumedRecord],
    decoded: dict[RecordId, tuple[object, object]],
    added: AddedHeaders,
    attempt: int,
    as_is: bool = False,
) -> Sequence[RecordOutcome] | str:
    """One pass through the chain; outcomes in ``pending`` order, or REASON_CONNECT (nothing reached the backend)."""
    exchange = Exchange(kind="consumer", name=ctx.consumer, records=tuple(pending), added_headers=added)
    if as_is:
        exchange.stash[AS_IS] = exchange.records
    else:
        exchange.stash[DECODED] = decoded
    try:
        await ctx.chain(exchange)
    except Exception as exc:
        if failure_reason(exc) == REASON_CONNECT:
            log.warning("consumer %s: %s; delivery waits for the backend", ctx.consumer, exc)
            return REASON_CONNECT
        error = str(exc) or type(exc).__name__
        if failure_reason(exc) is None:
            log.exception("consumer %s: the chain failed; %s", ctx.consumer, _what_next(ctx, attempt))
        else:
            log.warning("consumer %s: delivery failed (%s); %s", ctx.consumer, error, _what_next(ctx, attempt))
        return UniformOutcomes(pending, "RETRY", error)
    outcomes = exchange.stash.get(DELIVERED)
    if outcomes is None or len(outcomes) != len(pending):
        error = "the chain answered without delivering the batch"
        log.error("consumer %s: %s; %s", ctx.consumer, error, _what_next(ctx, attempt))
        return UniformOutcomes(pending, "RETRY", error)
    return outcomes


async def _settle(
    ctx: DeliveryContext,
    outcomes: Sequence[RecordOutcome],
    attempt: int,
    on_final: OnFinal,
    stats: DeliveryStats,
    added: AddedHeaders,
) -> list[ConsumedRecord]:
    """Apply the outcomes of one attempt; return the records to try again."""
    if isinstance(outcomes, UniformOutcomes) and outcomes.status in ("SUCCESS", "DROP"):
        if outcomes.status == "SUCCESS":  # the common case: the whole batch at once
            stats.delivered += len(outcomes)
        else:
            stats.dropped += len(outcomes)
        on_final(outcomes.records, outcomes.status)
        return []
    again: list[ConsumedRecord] = []
    letters: list[DeadLetter] = []
    succeeded: list[ConsumedRecord] = []
    dropped: list[ConsumedRecord] = []
    for outcome in outcomes:
        record = outcome.record
        if outcome.status == "SUCCESS":
            succeeded.append(record)
        elif outcome.status == "DROP":
            dropped.append(record)
        elif outcome.status == "DEADLETTER" or attempt >= ctx.retry.max_attempts:
            stats.last_error = outcome.error
            reason = outcome.error or ("backend asked for the dead-letter topic" if outcome.status == "DEADLETTER"
                                       else "backend asked to retry")  # fmt: skip
            if outcome.status == "RETRY":
                reason = f"{reason} (gave up after {attempt} attempts)"
            letters.append(DeadLetter(record, reason, attempt, ctx.consumer))
        else:
            stats.failed_attempts += 1
            stats.last_error = outcome.error
            again.append(record)
    stats.delivered += len(succeeded)
    stats.dropped += len(dropped)
    if succeeded:
        on_final(succeeded, "SUCCESS")
    if dropped:
        on_final(dropped, "DROP")
    await _dead_letter(ctx, letters, on_final, stats, added)
    return again


async def _dead_letter(
    ctx: DeliveryContext,
    letters: list[DeadLetter],
    on_final: OnFinal,
    stats: DeliveryStats,
    added: AddedHeaders,
) -> None:
    """Write dead letters until the sink stored each one (or drop them on a last attempt). A letter's record
    carries the headers middleware added (a copy, made only for the records dead-lettered)."""
    if added:
        letters = [DeadLetter(added.applied(x.record), x.error, x.attempts, x.consumer) for x in letters]
    if ctx.last_attempt:
        for letter in letters:
            log.warning("consumer %s: last attempt failed, dropping %s: %s", ctx.consumer, record_id(letter.record),
                        letter.error)  # fmt: skip
        stats.dropped += len(letters)
        if letters:
            on_final([letter.record for letter in letters], "DROP")
        return
    waits = 0
    while letters:
        try:
            receipts = await ctx.dead_letters.write(letters, ctx.dead_letter_suffix)
        except Exception as exc:
            receipts = []
            log.warning("consumer %s: dead-letter write failed: %s", ctx.consumer, exc)
        failed: list[DeadLetter] = []
        stored: list[ConsumedRecord] = []
        for index, letter in enumerate(letters):
            if index < len(receipts) and receipts[index].stored:
                stored.append(letter.record)
            else:
                failed.append(letter)
        stats.dead_lettered += len(stored)
        if stored:
            on_final(stored, "DEADLETTER")
        letters = failed
        if letters:
            waits += 1
            log.warning("consumer %s: %d dead letters not stored; retrying", ctx.consumer, len(letters))
            await asyncio.sleep(min(ctx.retry.backoff_s(waits), DLQ_RETRY_MAX_WAIT_S))
