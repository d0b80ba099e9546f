"""Real REST Proxy v2 client libraries from PyPI, run unchanged against the sidecar process (shipped chains.yml),
with the active consumer on each engine.

* ``nlp-kafka-rest-api`` (``kafka_rest``): produce JSON, then a binary consumer created with
  ``Content-Type: application/vnd.kafka.json.v2+json``: create, subscribe, consume, delete.
* ``pymapr-kafkarest``: produce JSON, then create, subscribe, consume, seek through ``POST .../positions/``
  (a trailing slash), consume again, delete. Its producer posts a batch again after every success (its
  own retry loop ``continue``s on 200), so each record arrives ``1 + retry`` times: the library's
  behaviour, asserted as such. It does not implement commit (``NotImplementedError``), so no commit here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from kafka_sidecar_testing.process import sidecar_process
from kafka_sidecar_testing.pytest_plugin import TopicFactory
from kafka_sidecar_testing.topics import create_topic

pytestmark = pytest.mark.kafka

SHIPPED = Path(__file__).resolve().parents[2] / "chains.yml"
T = TypeVar("T")


@pytest.fixture
def sidecar_url(tmp_path: Path, kafka_bootstrap: str, consumer_engine: str) -> Iterator[str]:
    """The shipped config, its active consumer on each engine (``kafka.consumer.engine``)."""
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "SIDECAR_CONSUMER_ENGINE": consumer_engine}
    with sidecar_process(SHIPPED.read_text(encoding="utf-8"), tmp_path, env=env) as sidecar:
        yield sidecar.base_url


def until(fetch: Callable[[], list[T]], done: Callable[[list[T]], bool], seconds: float = 30) -> list[T]:
    got: list[T] = []
    deadline = time.monotonic() + seconds
    while not done(got) and time.monotonic() < deadline:
        got.extend(fetch())
    return got


def test_nlp_kafka_rest_api_produce_and_consumer_lifecycle(sidecar_url: str, kafka_bootstrap: str) -> None:
    from kafka_rest import Consumer, Producer

    topic = TopicFactory.unique_name("nlp")
    response_topic = f"{topic}-response"  # the library's consumer reads "<topic>-response"
    asyncio.run(create_topic(kafka_bootstrap, response_topic, 1, None))
    producer = Producer(kafka_rest_api_url=sidecar_url, topic_id=response_topic)
    keys = producer.produce([{"n": 1}, {"n": 2}], endpoint="/orders")
    consumer = Consumer(kafka_rest_api_url=sidecar_url, topic_id=topic, consumer_group=f"g{topic}", instance="nlp1")
    with consumer:  # create (a vnd.kafka.json.v2+json body) and subscribe; delete on exit
        records = until(consumer.consume_earliest, lambda got: len(got) >= 2)
    assert sorted(r["key"] for r in records) == sorted(keys)
    assert sorted(r["value"]["payload"]["n"] for r in records) == [1, 2]
    assert all(r["value"]["endpoint"] == "/orders" for r in records)
    gone = httpx.get(f"{sidecar_url}/consumers/g{topic}/instances/nlp1/subscription")
    assert gone.status_code == 404, "the library's delete removed the instance"


def test_pymapr_kafkarest_produce_and_consumer_lifecycle(sidecar_url: str, topic_factory: TopicFactory) -> None:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    from pymapr_kafkarest.kafkarest import MaprKlient, MaprKProducer

    root.setLevel(level)  # the library reconfigures the root logger on import
    root.handlers[:] = handlers
    topic = topic_factory()
    producer = MaprKProducer(f"{sidecar_url}/", headers={})
    producer.produce([{"value": {"id": 1}}, {"value": {"id": 2}}], topic=topic)
    copies = 1 + producer.retry  # its loop posts again after each 200
    klient = MaprKlient(f"{sidecar_url}/", consumer=f"mapr{topic}", headers={}, topics=[topic], instance="m1")
    klient.connect()
    klient.subscribe()
    assert klient._subscription_topics() == {"topics": [topic]}

    def values(got: list[dict[str, Any]]) -> list[int]:
        return [r["value"]["id"] for r in got]

    first = until(klient.consume, lambda got: len(got) >= 2 * copies)
    assert sorted(values(first)) == sorted([1, 2] * copies)
    again = until(lambda: klient.consume(position=0), lambda got: len(got) >= 1)  # POST .../positions/ (slash)
    assert values(again)[0] == 1
    klient._instance_delete()
