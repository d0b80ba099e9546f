"""CPU per ``GET /metrics`` scrape: the Prometheus exporter (prometheus-client) rendering a realistic registry.

Rendering happens per scrape (every 15-60 s), never per request or record. The registry holds what a
busy sidecar shows: ``--routes`` HTTP routes (a counter and a 13-bucket histogram series each) and
``--partitions`` consumer-lag gauge series.

    python bench/metrics_scrape_bench.py --routes 200 --partitions 300
"""

from __future__ import annotations

import argparse
import time

from kafka_sidecar.plugin import MetricsRegistry
from kafka_sidecar_plugins.metrics import PrometheusExporter


def filled(routes: int, partitions: int) -> MetricsRegistry:
    registry = MetricsRegistry()
    requests = registry.counter("kafka_sidecar_http_requests_total", "x", ("method", "route", "status"))
    latency = registry.histogram("kafka_sidecar_http_request_duration_seconds", "x", ("method", "route"))
    for n in range(routes):
        requests.inc("POST", f"/r{n}", "200")
        latency.observe("POST", f"/r{n}", value=0.01 * (n % 7))
    lag = registry.gauge("kafka_sidecar_consumer_lag", "x", ("consumer", "topic", "partition"))
    for partition in range(partitions):
        lag.set("orders", "orders", str(partition), value=partition)
    return registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=int, default=200)
    parser.add_argument("--partitions", type=int, default=300)
    parser.add_argument("--scrapes", type=int, default=200)
    args = parser.parse_args()
    exporter = PrometheusExporter(filled(args.routes, args.partitions))
    lines = exporter.render().count(b"\n")
    cpu = time.process_time()
    for _ in range(args.scrapes):
        exporter.render()
    per_scrape = (time.process_time() - cpu) / args.scrapes
    print(f"{lines} lines per scrape: {per_scrape * 1000:.2f} ms CPU per scrape ({args.scrapes} scrapes)")


if __name__ == "__main__":
    main()
