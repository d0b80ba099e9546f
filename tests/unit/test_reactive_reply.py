"""Reading backend replies, offsets tracking and retry backoff (no broker)."""

from __future__ import annotations

import json
import random

import pytest

from kafka_sidecar._records import ConsumedRecord
from kafka_sidecar_handlers.reactive._backend import MalformedReply, parse_reply
from kafka_sidecar_handlers.reactive._config import ReactiveConsumerConfig, RetryPolicy
from kafka_sidecar_handlers.reactive._offsets import OffsetTracker

RECORDS = [ConsumedRecord("t", p, o, 1, None, b"{}") for p, o in ((0, 10), (0, 11), (1, 10))]


def _statuses(content: object) -> list[tuple[str, str | None]]:
    return [(o.status, o.error) for o in parse_reply(json.dumps(content).encode(), RECORDS)]


def test_empty_body_means_all_succeeded() -> None:
    assert [o.status for o in parse_reply(b"", RECORDS)] == ["SUCCESS"] * 3
    assert [o.status for o in parse_reply(b"  \n", RECORDS)] == ["SUCCESS"] * 3


def test_statuses_matched_by_partition_and_offset_in_any_order() -> None:
    reply = {
        "statuses": [
            {"partition": 1, "offset": 10, "status": "DEADLETTER", "error": "bad"},
            {"partition": 0, "offset": 10, "status": "success"},
            {"partition": 0, "offset": 11, "status": "DROP"},
        ]
    }
    assert _statuses(reply) == [("SUCCESS", None), ("DROP", None), ("DEADLETTER", "bad")]


def test_statuses_by_index_by_position_and_left_out() -> None:
    assert _statuses([{"index": 2, "status": "RETRY", "error": {"code": 7}}]) == [
        ("RETRY", "no status in the reply"),
        ("RETRY", "no status in the reply"),
        ("RETRY", '{"code": 7}'),
    ]
    assert _statuses({"results": [{"status": "DROP"}, {"status": "SUCCESS"}, {"status": "RETRY"}]}) == [
        ("DROP", None),
        ("SUCCESS", None),
        ("RETRY", None),
    ]
    assert _statuses({"status": "DROP"}) == [("DROP", None)] * 3


def test_java_record_processed_results() -> None:
    results = [
        {"record": {"topic": "t", "partition": 1, "offset": 10}, "processed": False, "stacktrace": "NPE at X"},
        {"record": {"topic": "t", "partition": 0, "offset": 10}, "processed": True},
        {"record": {"topic": "t", "partition": 0, "offset": 11}, "processed": True},
    ]
    assert _statuses(results) == [("SUCCESS", None), ("SUCCESS", None), ("DEADLETTER", "NPE at X")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"<html>", "not JSON"),
        (b'"SUCCESS"', "expected a list"),
        (b'{"statuses": [{"partition": 5, "offset": 1, "status": "SUCCESS"}]}', "not in the batch"),
        (b'{"statuses": [{"index": 3, "status": "SUCCESS"}]}', "outside the batch"),
        (b'{"statuses": [{"index": 0, "status": "MAYBE"}]}', "not one of"),
        (b'{"statuses": [{"index": 0, "status": "DROP"}, {"index": 0, "status": "DROP"}]}', "repeats"),
        (b'{"statuses": [{"status": "DROP"}]}', "no partition.offset or index"),
        (b'{"statuses": [{"index": 0}]}', "neither 'status'"),
        (b"[1, 2, 3]", "not an object"),
    ],
)
def test_malformed_replies_are_errors_not_crashes(content: bytes, message: str) -> None:
    with pytest.raises(MalformedReply, match=message):
        parse_reply(content, RECORDS)


def test_tracker_commits_only_contiguous_finished_offsets() -> None:
    tracker = OffsetTracker()
    for offset in (5, 6, 7, 9):  # 8 missing (compacted away)
        assert tracker.register(offset)
    assert tracker.committable() is None
    tracker.finish(6)
    tracker.finish(9)
    assert tracker.committable() is None  # 5 is not finished: nothing may be committed
    tracker.finish(5)
    assert tracker.committable() == 7
    tracker.finish(7)
    assert tracker.committable() == 10
    assert tracker.in_flight == 0
    assert not tracker.register(9)  # a duplicate fetch is ignored
    tracker.finish(42)  # not in flight: ignored
    assert tracker.committable() == 10
    tracker.reset(3)
    assert tracker.committable() == 3
    assert not tracker.register(2)
    assert tracker.register(3)


def test_backoff_grows_is_capped_and_jittered() -> None:
    policy = RetryPolicy(max_attempts=5, initial_backoff_ms=100, multiplier=2, max_backoff_ms=500, jitter=0)
    assert [policy.backoff_s(n) for n in (1, 2, 3, 4, 5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    jittered = RetryPolicy(initial_backoff_ms=1000, max_backoff_ms=10_000, jitter=0.5)
    waits = {jittered.backoff_s(1, random.Random(seed)) for seed in range(20)}
    assert len(waits) > 1
    assert all(0.5 <= w <= 1.5 for w in waits)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of 'topics'"),
        ({"topics": ("a",), "topic_pattern": "a.*"}, "exactly one of 'topics'"),
        ({"topics": ("a",), "backend_url": "ftp://x"}, "http"),
        ({"topics": ("a",), "batch_max_records": 0}, "batch_max_records"),
        ({"topics": ("a",), "backend_path": "deliver"}, "backend_path"),
    ],
)
def test_config_validation(kwargs: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"group": "g", "backend_url": "http://127.0.0.1:1", **kwargs}
    with pytest.raises(ValueError, match=message):
        ReactiveConsumerConfig(**values)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


def test_request_body_splices_json_text_and_encodes_the_rest() -> None:
    from kafka_sidecar_handlers.reactive._backend import RawJson, record_entry, request_body

    record = ConsumedRecord("t", 2, 7, 1700, b"k", b' {"a": [1, 2]} ', (("h", b"\xffx"),))
    raw = RawJson.of(record.value or b"")
    assert raw is not None
    assert RawJson.of(b"\xef\xbb\xbf{}") is None
    assert RawJson.of(b'"\x00a"'.replace(b"a", b"")) is None
    body = request_body('or"ders', [record_entry(record, "k", raw), record_entry(record, None, {"b": "é"})])
    assert json.loads(body) == {
        "consumer": 'or"ders',
        "records": [
            {"topic": "t", "partition": 2, "offset": 7, "timestamp": 1700, "headers": {"h": "\ufffdx"},
             "key": "k", "value": {"a": [1, 2]}},
            {"topic": "t", "partition": 2, "offset": 7, "timestamp": 1700, "headers": {"h": "\ufffdx"},
             "key": None, "value": {"b": "é"}},
        ],
    }  # fmt: skip


def test_java_request_format_is_the_bare_record_array() -> None:
    from kafka_sidecar_handlers.reactive._backend import record_entry, request_body

    record = ConsumedRecord("t", 0, 3, 5, None, b"1")
    body = json.loads(request_body("c", [record_entry(record, None, 1)], java=True))
    assert body == [{"topic": "t", "partition": 0, "offset": 3, "timestamp": 5, "headers": {}, "key": None, "value": 1}]
