"""The reactive consumer's CPU per record with the shipped config changed one thing at a time.

Every variant is a real ``kafka-sidecar run`` process delivering the same filled topic (a fresh group
each run) to the suite's instant-ack backend; CPU per record is the sidecar's user+system time from
``/proc`` over the delivery window (as ``bench/suite.py`` measures it). Variants are interleaved in
every rep, so a busy machine slows them alike; the median, min and max over the reps are printed.

Variants (``--variants``, comma-separated):

- ``shipped``, ``bare``: ``chains.yml`` and ``bench/chains-bare.yml``;
- ``none``: the shipped config with an empty ``default-consumer`` chain (everything else shipped);
- ``-PLUGIN``: the shipped config without that plugin in ``default-consumer`` (metrics, correlation,
  tracing, logging, audit);
- ``+PLUGIN``: ``none`` with only that plugin;
- ``audit-log``: the shipped config with the audit written to the log (no audit producer);
- ``no-idle``: the shipped config without the audit's handler anywhere (no internal producer);
- ``audit-linger0``: the shipped config with the audit's ``linger_ms: 0``;
- ``before:VARIANT``: that variant run from the checkout ``--before-src`` (an A/B in the same reps).

Besides CPU per record, the user and system shares, the minor page faults per record and the peak RSS.

::

    KAFKA_SIDECAR_BOOTSTRAP=<broker> .venv/bin/python bench/reactive_chain_ablation.py \\
        --records 300000 --reps 3 --variants shipped,bare,none,-audit,-correlation
    ... --variants shipped,before:shipped,bare,before:bare --before-src <checkout of main>
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import os
import re
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import suite
from common import REPO, kafka_bootstrap, load_average
from suite import BARE, CONFIGS, SHIPPED, Row, Settings, fill_topic, reactive_sidecar, sidecar_env

PLUGINS = ("metrics", "correlation", "tracing", "logging", "audit")
CONSUMER_CHAIN = "  default-consumer: [metrics, correlation, tracing, logging, audit]\n"


def variant_config(work: Path, variant: str) -> Path:
    """The config file of ``variant`` (see the module doc)."""
    variant = variant.removeprefix("before:")
    if variant == "bare":
        return CONFIGS[BARE]
    text = CONFIGS[SHIPPED].read_text(encoding="utf-8")
    if variant == "shipped":
        return CONFIGS[SHIPPED]
    if CONSUMER_CHAIN not in text:
        raise SystemExit(f"the default-consumer chain of {CONFIGS[SHIPPED]} changed; update {__file__}")
    if variant == "none":
        chain: Sequence[str] = ()
    elif variant.startswith("-") and variant[1:] in PLUGINS:
        chain = [p for p in PLUGINS if p != variant[1:]]
    elif variant.startswith("+") and variant[1:] in PLUGINS:
        chain = [variant[1:]]
    elif variant == "audit-log":
        chain = PLUGINS
        text = text.replace("      target: kafka\n", "      target: log\n", 1)
    elif variant == "audit-linger0":
        chain = PLUGINS
        text = text.replace("      key: hash\n", "      key: hash\n      linger_ms: 0\n", 1)
    elif variant == "no-idle":
        chain = [p for p in PLUGINS if p != "audit"]
        text = re.sub(r"(?m)^(  default: \[.*), audit(.*\])$", r"\1\2", text)
    else:
        raise SystemExit(f"unknown variant {variant!r}")
    text = text.replace(CONSUMER_CHAIN, f"  default-consumer: [{', '.join(chain)}]\n")
    path = work / f"ablation-{variant.replace('+', 'only-').replace('-', 'no-')}.yml"
    path.write_text(text, encoding="utf-8")
    return path


STATS: dict[int, list[tuple[int, int, int]]] = {}
"""(minor faults, user ticks, system ticks) of each pid, read when the backend reads the CPU."""


def _cpu_and_stats(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    stats = STATS.setdefault(pid, [])
    snapshot = (int(fields[7]), int(fields[11]), int(fields[12]))
    stats[1:] = [snapshot] if stats else []
    if not stats:
        stats.append(snapshot)
    return (snapshot[1] + snapshot[2]) / os.sysconf("SC_CLK_TCK")


async def run(args: argparse.Namespace, bootstrap: str, work: Path) -> dict[str, list[Row]]:
    suite.process_cpu_seconds = _cpu_and_stats  # type: ignore[attr-defined]  # the backend reads it
    settings = Settings(0, 0, 0, args.record_size, 0, args.records, args.partitions, False,
                        sidecar_env(args.sidecar_src), bootstrap, work)  # fmt: skip
    configs = {variant: variant_config(work, variant) for variant in args.variants}
    topic = await fill_topic(settings, "ablation", json_values=True)
    print(f"topic {topic}: {args.records} records of {args.record_size} B in {args.partitions} partitions")
    rows: dict[str, list[Row]] = {variant: [] for variant in args.variants}
    for rep in range(1, args.reps + 1):
        order = args.variants if rep % 2 else list(reversed(args.variants))  # alternate who goes first
        for variant in order:
            row = Row("reactive", variant, rep)
            env = sidecar_env(args.before_src) if variant.startswith("before:") else settings.sidecar_env
            saved = dict(CONFIGS)
            CONFIGS[SHIPPED] = configs[variant]  # reactive_sidecar reads the config of its system
            STATS.clear()
            try:
                await reactive_sidecar(dataclasses.replace(settings, sidecar_env=env), SHIPPED, row, topic)
            finally:
                CONFIGS.update(saved)
            ((first, last),) = STATS.values()
            faults, user, system = (b - a for a, b in zip(first, last, strict=True))
            row.note = (f"user {user / (user + system):.0%}, {faults / row.records:.3f} faults/rec, "
                        f"peak RSS {row.peak_rss_mb:.0f} MB; {row.note}")  # fmt: skip
            rows[variant].append(row)
            print(f"[rep {rep}] {variant:14} {row.rate:10,.0f} rec/s {row.cpu_us_per_record:6.2f} µs/rec  {row.note}",
                  flush=True)  # fmt: skip
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--bootstrap", default=None, help="default: $KAFKA_SIDECAR_BOOTSTRAP or a fresh broker")
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--record-size", type=int, default=1024)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--variants", type=lambda t: t.split(","), default=["shipped", "bare", "none"])
    parser.add_argument("--sidecar-src", type=Path, default=None, help="run the sidecars from this checkout")
    parser.add_argument("--before-src", type=Path, default=None, help="the checkout 'before:' variants run")
    args = parser.parse_args(argv)
    print(f"load average before: {load_average()}; {' '.join([Path(sys.executable).name, *sys.argv])}")
    with kafka_bootstrap(args.bootstrap) as bootstrap, tempfile.TemporaryDirectory(prefix="ablation-") as tmp:
        rows = asyncio.run(run(args, bootstrap, Path(tmp)))
    print(f"load average after: {load_average()}")
    print(f"{'variant':14} {'median':>7} {'min':>7} {'max':>7}  CPU µs/record over {args.reps} reps  (rec/s median)")
    for variant, group in rows.items():
        cpu = [r.cpu_us_per_record for r in group]
        rate = statistics.median(r.rate for r in group)
        print(f"{variant:14} {statistics.median(cpu):7.2f} {min(cpu):7.2f} {max(cpu):7.2f}  ({rate:,.0f})")
    return 0


if __name__ == "__main__":
    os.chdir(REPO)
    raise SystemExit(main())
