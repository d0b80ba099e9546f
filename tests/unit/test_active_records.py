"""The poll loop and the instance bookkeeping, with a fake aiokafka consumer (a seam we own)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka import errors as kafka_errors

from kafka_sidecar import _json as json_module
from kafka_sidecar._errors import Conflict, KafkaUnavailable, RecordUndecodable
from kafka_sidecar._json import dumps
from kafka_sidecar._serdes.builtin import BINARY, JSON, STRING
from kafka_sidecar_handlers.active._instance import ActiveInstance, InstanceKey
from kafka_sidecar_handlers.active._records import (
    PollLimits,
    gather,
    owned_pairs,
    prepare_next,
    render,
    take_prepared,
)
from kafka_sidecar_handlers.active._requests import CreateRequest, PartitionOffset, PartitionTimestamp, Subscription


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None
    timestamp: int = 1
    headers: tuple[tuple[str, bytes | None], ...] = ()


@dataclass
class FakeConsumer:
    """Hands out queued batches from getmany; records commits and seeks."""

    batches: list[dict[TopicPartition, list[Message]]] = field(default_factory=list)
    topics: frozenset[str] = frozenset()
    assigned: set[TopicPartition] = field(default_factory=set)
    commits: list[dict[TopicPartition, Any]] = field(default_factory=list)
    seeks: list[tuple[TopicPartition, int]] = field(default_factory=list)
    polls: int = 0

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[TopicPartition, list[Message]]:
        self.polls += 1
        if self.batches:
            return self.batches.pop(0)
        await asyncio.sleep(timeout_ms / 1000)
        return {}

    def subscription(self) -> frozenset[str]:
        return self.topics

    def subscribe(self, topics: Iterable[str] = (), pattern: str | None = None, listener: Any = None) -> None:
        self.topics = frozenset(topics)

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    async def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        self.commits.append(offsets)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))

    def unsubscribe(self) -> None:
        self.topics = frozenset()


SETTINGS = CreateRequest(None, "json", "json", "earliest", False, 1, 1000)
TP0, TP1 = TopicPartition("t", 0), TopicPartition("t", 1)


def instance_with(consumer: FakeConsumer, settings: CreateRequest = SETTINGS) -> ActiveInstance:
    consumer.topics = consumer.topics or frozenset({"t"})
    consumer.assigned = consumer.assigned or {TP0, TP1}
    return ActiveInstance(InstanceKey("g", "i"), settings, consumer)


def messages(tp: TopicPartition, start: int, count: int, size: int = 10) -> list[Message]:
    return [Message(tp.topic, tp.partition, start + n, b"1" * size) for n in range(count)]


LIMITS = PollLimits(timeout_s=0.2, max_bytes=1000, min_bytes=1, max_poll_records=100)


@pytest.mark.asyncio
async def test_max_bytes_keeps_the_rest_buffered_for_the_next_poll() -> None:
    consumer = FakeConsumer(batches=[{TP0: messages(TP0, 0, 10)}])
    instance = instance_with(consumer)
    first = await gather(instance, PollLimits(0.2, 35, 1, 100))
    assert [r.offset for r in first] == [0, 1, 2]
    assert len(instance.buffer) == 7
    second = await gather(instance, PollLimits(0.2, 1000, 1, 100))
    assert [r.offset for r in second] == list(range(3, 10))
    assert consumer.polls == 1, "the second poll was served from the buffer"


@pytest.mark.asyncio
async def test_a_record_larger_than_max_bytes_is_not_returned_as_confluent_does() -> None:
    consumer = FakeConsumer(batches=[{TP0: messages(TP0, 0, 2, size=500)}])
    instance = instance_with(consumer)
    assert await gather(instance, PollLimits(0.2, 100, 1, 100)) == []
    assert [r.offset for r in instance.buffer] == [0, 1], "kept for a poll with a larger max_bytes"
    assert [r.offset for r in await gather(instance, PollLimits(0.2, 1000, 1, 100))] == [0, 1]


@pytest.mark.asyncio
async def test_min_bytes_waits_for_more_records_and_minus_one_waits_for_the_timeout() -> None:
    consumer = FakeConsumer(
        batches=[{TP0: messages(TP0, 0, 1)}, {TP0: messages(TP0, 1, 1)}, {TP0: messages(TP0, 2, 5)}]
    )
    instance = instance_with(consumer)
    assert [r.offset for r in await gather(instance, PollLimits(5, 1000, 25, 100))] == [0, 1, 2, 3, 4, 5, 6]
    consumer.batches = [{TP0: messages(TP0, 7, 1)}]
    loop = asyncio.get_running_loop()
    started = loop.time()
    got = await gather(instance, PollLimits(0.3, 1000, -1, 100))
    assert [r.offset for r in got] == [7]
    assert loop.time() - started >= 0.25


@pytest.mark.asyncio
async def test_revoked_partitions_lose_their_buffered_records() -> None:
    consumer = FakeConsumer(batches=[{TP0: messages(TP0, 0, 5), TP1: messages(TP1, 0, 5)}])
    instance = instance_with(consumer)
    await gather(instance, PollLimits(0.2, 20, 1, 100))  # takes two, buffers eight
    await instance.partitions_revoked({TP1})
    assert {r.partition for r in instance.buffer} == {0}
    assert consumer.commits == [], "a manual-commit instance never commits on revoke"


@pytest.mark.asyncio
async def test_records_of_partitions_revoked_while_decoding_are_not_returned() -> None:
    consumer = FakeConsumer(batches=[{TP0: messages(TP0, 0, 2), TP1: messages(TP1, 0, 2)}])
    instance = instance_with(consumer)
    records = await gather(instance, LIMITS)
    rendered = await render(instance, records, JSON, JSON)
    consumer.assigned = {TP0}
    kept, body = owned_pairs(instance, records, rendered)
    assert {r.partition for r in kept} == {0}
    assert [b.partition for b in body] == [0, 0]


@pytest.mark.asyncio
async def test_undecodable_record_ends_the_reply_then_fails_the_next_naming_it() -> None:
    batch = messages(TP0, 0, 3)
    batch[1].value = b"{not json"
    instance = instance_with(FakeConsumer(batches=[{TP0: batch}]))
    records = await gather(instance, LIMITS)
    rendered = await render(instance, records, JSON, JSON)
    assert [r.offset for r in rendered] == [0]
    again = await gather(instance, LIMITS)
    with pytest.raises(RecordUndecodable) as caught:
        await render(instance, again, JSON, JSON)
    assert caught.value.extra == {"topic": "t", "partition": 0, "offset": 1}
    assert [r.offset for r in instance.buffer] == [1, 2], "the bad record stays first in line"


@pytest.mark.asyncio
async def test_empty_commit_commits_only_what_was_returned() -> None:
    consumer = FakeConsumer(batches=[{TP0: messages(TP0, 5, 10)}])
    instance = instance_with(consumer)
    records = await gather(instance, PollLimits(0.2, 30, 1, 100))
    instance.mark_delivered(records)
    committed = await instance.commit(())
    assert consumer.commits == [{TP0: (8, "")}]
    assert committed == [{"topic": "t", "partition": 0, "consumed": 7, "committed": 8}]


@pytest.mark.asyncio
async def test_explicit_commit_is_offset_plus_one_and_needs_assignment() -> None:
    consumer = FakeConsumer()
    instance = instance_with(consumer)
    await instance.commit((PartitionOffset("t", 1, 41, "m"),))
    assert consumer.commits == [{TP1: (42, "m")}]
    with pytest.raises(Conflict) as caught:
        await instance.commit((PartitionOffset("t", 9, 1),))
    assert caught.value.v2_error_code == 40903


@pytest.mark.asyncio
async def test_seek_drops_buffered_records_of_that_partition() -> None:
    consumer = FakeConsumer(batches=[{TP0: messages(TP0, 0, 5), TP1: messages(TP1, 0, 5)}])
    instance = instance_with(consumer)
    await gather(instance, PollLimits(0.2, 10, 1, 100))
    await instance.seek((PartitionOffset("t", 1, 2),), ())
    assert consumer.seeks == [(TP1, 2)]
    assert {r.partition for r in instance.buffer} == {0}


@pytest.mark.asyncio
async def test_poll_without_subscription_or_assignment_is_409() -> None:
    consumer = FakeConsumer()
    instance = ActiveInstance(InstanceKey("g", "i"), SETTINGS, consumer)
    with pytest.raises(Conflict):
        await gather(instance, LIMITS)
    instance.subscribe(Subscription(("t",), None))
    consumer.assigned = {TP0}
    assert await gather(instance, PollLimits(0.05, 10, 1, 100)) == []


@pytest.mark.asyncio
async def test_auto_commit_instance_commits_returned_records_on_revoke_and_close() -> None:
    consumer = FakeConsumer(batches=[{TP0: messages(TP0, 0, 3)}])
    consumer.stop = _async_noop  # type: ignore[attr-defined]
    instance = instance_with(consumer, CreateRequest(None, "string", "string", "earliest", True, 1, 1000))
    records = await gather(instance, LIMITS)
    instance.mark_delivered(records)
    assert [r.value for r in await render(instance, records, STRING, STRING)] == ["1" * 10] * 3
    await instance.partitions_revoked({TP0})
    assert consumer.commits == [{TP0: 3}]
    await instance.close("test")
    assert instance.closed


async def _async_noop() -> None:
    return None


@pytest.mark.asyncio
async def test_seek_by_timestamp_past_the_last_record_goes_to_the_end() -> None:
    consumer = FakeConsumer()
    ends: list[tuple[TopicPartition, ...]] = []

    async def offsets_for_times(stamps: dict[TopicPartition, int]) -> dict[TopicPartition, None]:
        return dict.fromkeys(stamps)

    async def seek_to_end(*tps: TopicPartition) -> None:
        ends.append(tps)

    consumer.offsets_for_times = offsets_for_times  # type: ignore[attr-defined]
    consumer.seek_to_end = seek_to_end  # type: ignore[attr-defined]
    instance = instance_with(consumer)
    await instance.seek((), (PartitionTimestamp("t", 1, 10**13),))
    assert ends == [(TP1,)]
    assert consumer.seeks == []


@pytest.mark.asyncio
async def test_a_reply_rendered_at_once_keeps_tombstones_keys_and_headers_in_place() -> None:
    batch = messages(TP0, 0, 4)
    batch[0].key, batch[1].value, batch[2].headers = b'"k"', None, (("h", b"v"), ("n", None))
    batch[3].value = b'{"a": [1, 2]}'
    instance = instance_with(FakeConsumer(batches=[{TP0: batch}]))
    rendered = await render(instance, await gather(instance, LIMITS), JSON, JSON)
    body = json.loads(dumps(rendered))
    assert [(r["key"], r["value"], r["headers"]) for r in body] == [
        ("k", 1111111111, {}),
        (None, None, {}),
        (None, 1111111111, {"h": "v", "n": ""}),
        (None, {"a": [1, 2]}, {}),
    ]
    assert list(body[0]) == ["topic", "key", "value", "partition", "offset", "timestamp", "headers"]


@pytest.mark.asyncio
@pytest.mark.parametrize("fast_base64", [True, False], ids=["pybase64", "msgspec"])
async def test_binary_replies_are_the_same_with_and_without_pybase64(
    fast_base64: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not fast_base64:
        monkeypatch.setattr(json_module, "_fast_b64encode", None)
    batch = messages(TP0, 0, 3)
    batch[0].key, batch[1].value, batch[2].value = b"\x00\xff", None, bytes(range(256))
    instance = instance_with(
        FakeConsumer(batches=[{TP0: batch}]), CreateRequest(None, "binary", "binary", "earliest", False, 1, 1000)
    )
    body = json.loads(dumps(await render(instance, await gather(instance, LIMITS), BINARY, BINARY)))
    assert [(r["key"], r["value"]) for r in body] == [
        ("AP8=", base64.b64encode(b"1" * 10).decode()),
        (None, None),
        (None, base64.b64encode(bytes(range(256))).decode()),
    ]


# -- reading ahead: the next reply fetched and written while the client reads this one ---------------


async def poll_as_usual(instance: ActiveInstance, limits: PollLimits = LIMITS) -> bytes:
    records = await gather(instance, limits)
    kept, body = owned_pairs(instance, records, await render(instance, records, JSON, JSON))
    instance.mark_delivered(kept)
    return dumps(body)


@pytest.mark.asyncio
async def test_a_reply_read_ahead_is_the_one_the_poll_would_have_answered_and_counts_as_delivered() -> None:
    def fresh() -> tuple[FakeConsumer, ActiveInstance]:
        consumer = FakeConsumer(batches=[{TP0: messages(TP0, 0, 3), TP1: messages(TP1, 0, 2)}])
        return consumer, instance_with(consumer)

    consumer, instance = fresh()
    await prepare_next(instance, 100, "json", "json")
    assert consumer.polls == 1
    assert len(instance.buffer) == 5
    prepared = take_prepared(instance, LIMITS)
    assert prepared is not None
    assert not instance.buffer, "taken: the buffer is empty"
    assert instance.buffer.prepared is None
    instance.mark_delivered_up_to(prepared.last_offsets)
    assert instance.delivered == {TP0: 3, TP1: 2}

    _, usual = fresh()
    assert prepared.body == await poll_as_usual(usual)
    assert usual.delivered == instance.delivered


@pytest.mark.asyncio
async def test_reading_ahead_hands_out_nothing_and_commits_nothing() -> None:
    consumer = FakeConsumer(batches=[{TP0: messages(TP0, 0, 3)}, {TP0: messages(TP0, 3, 4)}])
    instance = instance_with(consumer)
    await poll_as_usual(instance)
    await prepare_next(instance, 100, "json", "json")  # the client has not asked for offsets 3..6 yet
    assert [r.offset for r in instance.buffer] == [3, 4, 5, 6]
    await instance.commit(())
    assert consumer.commits == [{TP0: (3, "")}], "an empty-body commit covers only the records returned"


@pytest.mark.asyncio
async def test_a_read_ahead_reply_is_used_only_when_the_poll_would_answer_exactly_it() -> None:
    consumer = FakeConsumer(batches=[{TP0: messages(TP0, 0, 5)}])
    instance = instance_with(consumer)
    await prepare_next(instance, 100, "json", "json")
    assert take_prepared(instance, PollLimits(0.2, 30, 1, 100)) is None, "max_bytes holds only part of it"
    assert take_prepared(instance, PollLimits(0.2, 1000, -1, 100)) is None, "fetch.min.bytes -1 waits for more"
    assert take_prepared(instance, PollLimits(0.2, 1000, 60, 100)) is None, "fetch.min.bytes not reached"
    assert len(instance.buffer) == 5, "nothing changed"
    assert instance.buffer.prepared is not None
    consumer.assigned = {TP1}
    assert take_prepared(instance, LIMITS) is None, "its partition was taken away meanwhile"
    consumer.assigned = {TP0, TP1}
    first = await gather(instance, PollLimits(0.2, 30, 1, 100))
    assert [r.offset for r in first] == [0, 1, 2]
    assert instance.buffer.prepared is None, "a poll that took part of the buffer forgets the prepared reply"


def is_forgotten(instance: ActiveInstance) -> bool:
    return instance.buffer.prepared is None


@pytest.mark.asyncio
async def test_seek_rebalance_and_subscription_changes_forget_a_read_ahead_reply() -> None:
    for change in ("seek", "revoke", "subscribe", "unsubscribe"):
        consumer = FakeConsumer(batches=[{TP0: messages(TP0, 0, 2), TP1: messages(TP1, 0, 2)}])
        instance = instance_with(consumer)
        await prepare_next(instance, 100, "json", "json")
        assert instance.buffer.prepared is not None
        if change == "seek":
            await instance.seek((PartitionOffset("t", 1, 0),), ())
        elif change == "revoke":
            await instance.partitions_revoked({TP1})
        elif change == "subscribe":
            instance.subscribe(Subscription(("t",), None))
        else:
            await instance.unsubscribe()
        assert is_forgotten(instance), change
        assert take_prepared(instance, LIMITS) is None, change


@pytest.mark.asyncio
async def test_a_closed_instance_or_records_already_buffered_are_not_read_ahead() -> None:
    consumer = FakeConsumer(batches=[{TP0: messages(TP0, 0, 5)}, {TP0: messages(TP0, 5, 5)}])
    instance = instance_with(consumer)
    await gather(instance, PollLimits(0.2, 30, 1, 100))  # three taken, two left in the buffer
    await prepare_next(instance, 100, "json", "json")
    assert consumer.polls == 1
    assert instance.buffer.prepared is None
    instance.closed = True
    instance.buffer.clear()
    await prepare_next(instance, 100, "json", "json")
    assert consumer.polls == 1


@pytest.mark.asyncio
async def test_a_kafka_error_met_while_reading_ahead_is_answered_by_the_next_poll() -> None:
    class Failing(FakeConsumer):
        async def getmany(
            self, timeout_ms: int = 0, max_records: int | None = None
        ) -> dict[TopicPartition, list[Message]]:
            self.polls += 1
            if self.polls == 1:
                raise kafka_errors.KafkaConnectionError("broker went away")
            return await super().getmany(timeout_ms, max_records)

    consumer = Failing()
    instance = instance_with(consumer)
    await prepare_next(instance, 100, "json", "json")
    with pytest.raises(KafkaUnavailable, match="broker went away"):
        await gather(instance, LIMITS)
    assert await gather(instance, PollLimits(0.05, 1000, 1, 100)) == [], "reported once"


@pytest.mark.asyncio
async def test_formats_that_need_the_serde_are_read_ahead_but_rendered_by_the_poll() -> None:
    consumer = FakeConsumer(batches=[{TP0: messages(TP0, 0, 3)}])
    instance = instance_with(consumer)
    await prepare_next(instance, 100, "string", "string")
    assert len(instance.buffer) == 3
    assert instance.buffer.prepared is None
    records = await gather(instance, LIMITS)
    assert consumer.polls == 1
    assert [r.offset for r in records] == [0, 1, 2]
    assert [r.value for r in await render(instance, records, STRING, STRING)] == ["1" * 10] * 3
