"""The producer terminal's column-by-column path builds exactly the records the record-by-record one does,
and the record types and counts the plugins read behave as documented (docs/writing-plugins.md)."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kafka_sidecar import DeliveryReport, OutgoingRecord, ValidationFailed
from kafka_sidecar._exchange import Produced
from kafka_sidecar._serdes.builtin import JSON, STRING
from kafka_sidecar_handlers.producer import _outgoing, _outgoing_one_by_one
from kafka_sidecar_handlers.producer._request import ProduceRecordIn

SHARED = [("X-Correlation-Id", b"c-1")]
text = st.text(max_size=5) | st.just("a\ud800")  # a lone surrogate: a problem naming its field
records = st.builds(
    ProduceRecordIn,
    key=st.none() | text,
    value=st.none() | text,
    partition=st.none() | st.integers(0, 5),
    headers=st.none() | st.dictionaries(st.sampled_from(["a", "X-Correlation-Id"]), text, max_size=2),
    timestamp=st.none() | st.integers(-5, 2**40),
    correlation_id=st.none() | st.text(min_size=1, max_size=3),
    traceability_id=st.none() | st.text(min_size=1, max_size=3),
)


def outcome(build: object, *args: object) -> object:
    try:
        return build(*args)  # type: ignore[operator]
    except ValidationFailed as exc:
        return ("problem", exc.field, str(exc))
    except UnicodeEncodeError as exc:  # a header with a lone surrogate (the JSON parser stops those first)
        return ("unicode", exc.object, exc.start)


@settings(max_examples=300, deadline=None)
@given(st.lists(records, min_size=1, max_size=6), st.none() | st.integers(0, 3), st.booleans())
def test_columns_build_the_same_records_and_problems_as_one_by_one(
    batch: list[ProduceRecordIn], path_partition: int | None, shared: bool
) -> None:
    encode = STRING.encoder
    headers = SHARED if shared else []
    fast = outcome(_outgoing, "t", batch, encode, encode, headers, path_partition)
    slow = outcome(_outgoing_one_by_one, "t", batch, encode, encode, headers, path_partition)
    assert fast == slow


def test_the_usual_request_shares_one_headers_tuple_and_keeps_the_order() -> None:
    batch = [ProduceRecordIn(key=f"k{i}", value={"n": i}) for i in range(3)]
    built = _outgoing("t", batch, STRING.encoder, JSON.encoder, SHARED, None)
    assert [(r.key, r.value) for r in built] == [(b"k0", b'{"n":0}'), (b"k1", b'{"n":1}'), (b"k2", b'{"n":2}')]
    assert all(r.headers is built[0].headers for r in built)
    assert built[0].headers == tuple(SHARED)


def test_produced_counts_acknowledged_reports() -> None:
    ok = DeliveryReport("t", 0, 5, timestamp_ms=1)
    failed = DeliveryReport("t", 0, None, 50003, "not written")
    no_offset = DeliveryReport("t", 0, None)  # error code 0 but no offset: not acknowledged
    assert Produced("t", (), (ok, ok)).acknowledged == 2
    assert Produced("t", (), (ok, failed, no_offset)).acknowledged == 1
    assert Produced("t", (), ()).acknowledged == 0


def test_record_types_are_frozen_structs() -> None:
    record = OutgoingRecord("t", b"k", b"v", partition=1)
    assert record == OutgoingRecord(topic="t", key=b"k", value=b"v", headers=(), partition=1, timestamp_ms=None)
    with pytest.raises(AttributeError):
        record.key = b"x"  # type: ignore[misc]
    report = DeliveryReport("t", 0, 7)
    assert report.acknowledged
    assert not msgspec.structs.replace(report, error_code=50002).acknowledged
