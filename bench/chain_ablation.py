"""CPU per record of the shipped chain changed one thing at a time: reactive push or produce 100.

Every variant is a real ``kafka-sidecar run`` process. ``--scenario reactive`` (default): each delivers
the same filled topic (a fresh group each run) to the suite's instant-ack backend; CPU per record is the
sidecar's user+system time from ``/proc`` over the delivery window, as ``bench/suite.py`` measures it,
with the user share, minor page faults per record and peak RSS besides. ``--scenario produce100``: the
suite's produce scenario (100 x 1 KiB records per request, 8 clients, ``--duration`` s); ``produce1``: the
suite's one record per request, open loop at ``--rate`` requests/s (CPU per request, p99). Variants are
interleaved in every rep (the order alternates), so a busy machine slows them alike; the median, min
and max over the reps are printed, and each variant's ratio to ``bare`` (or to the last variant listed)
rep by rep: the median of those paired ratios is the steadiest figure of a noisy machine.

Variants (``--variants``, comma-separated), each about the scenario's chain (``default-consumer`` for
reactive, ``default`` for the produce scenarios):

- ``shipped``, ``bare``: ``chains.yml`` and ``bench/chains-bare.yml``;
- ``none``: the shipped config with that chain empty (everything else shipped);
- ``-PLUGIN`` / ``+PLUGIN``: the chain without that plugin / with only that plugin;
- ``audit-log``: the audit written to the log (no audit producer traffic);
- ``audit:KEY=VALUE``: that key of the audit's config (``audit:linger_ms=0``, ``audit:produced=false``);
- ``correlation:KEY=VALUE``: that key of the correlation's config (``correlation:to_records=false``: no id
  header on produced records);
- ``librdkafka``: ``kafka.producer.engine: librdkafka`` (the business and the internal producer);
- ``no-idle``: no audit handler in any chain (no audit sink, no writer task);
- ``pass:N`` / ``pass:N+PLUGIN+...``: N middlewares that only pass the exchange on (a plugin written with
  the public API, loaded from ``plugins.dirs``), then those shipped plugins: what the chain's layers cost
  before any plugin does its work;
- ``before:VARIANT``: that variant run from the checkout ``--before-src`` (an A/B in the same reps).

With ``--profile DIR``, py-spy (``--nonblocking``, 1000 Hz, raw format) samples each sidecar for
``--profile-seconds`` (the profiler's own load is in the CPU figures then).

::

    KAFKA_SIDECAR_BOOTSTRAP=<broker> .venv/bin/python bench/chain_ablation.py \\
        --records 300000 --reps 3 --variants shipped,bare,none,-audit,-correlation
    ... --variants shipped,before:shipped,bare,before:bare --before-src <checkout of main>
    ... --scenario produce100 --variants shipped,bare,none,-audit,-validation --reps 3
    ... --scenario produce100 --engines uvicorn+librdkafka --variants shipped,bare --profile /tmp/profiles
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import suite
from common import REPO, kafka_bootstrap, load_average, sidecar_process
from suite import (
    BARE,
    CONFIGS,
    SHIPPED,
    Row,
    Settings,
    Variant,
    audit_drops,
    fill_topic,
    produce1_http,
    produce_http,
    reactive_sidecar,
    sidecar_env,
    variant_env,
)

CHAINS = {
    "reactive": ("default-consumer", ("metrics", "correlation", "tracing", "logging", "audit")),
    "produce100": ("default", ("metrics", "correlation", "tracing", "logging", "audit", "validation")),
    "produce1": ("default", ("metrics", "correlation", "tracing", "logging", "audit", "validation")),
}
"""The shipped chain each scenario runs (chains.yml), outermost first."""

PASS_THROUGH = Path(__file__).resolve().parent / "pass_through_plugin"
"""The ``pass:N`` variants' plugin folder: a middleware that does nothing but call the next link."""

PROFILE_HZ = 1000
"""py-spy samples per second: about 5,000 samples per variant in a 5 s profile."""


def variant_config(work: Path, variant: str, scenario: str = "reactive") -> Path:
    """The config file of ``variant`` (see the module doc) for ``scenario``."""
    variant = variant.removeprefix("before:")
    if variant == "bare":
        return CONFIGS[BARE]
    text = CONFIGS[SHIPPED].read_text(encoding="utf-8")
    if variant == "shipped":
        return CONFIGS[SHIPPED]
    name, plugins = CHAINS[scenario]
    line = f"  {name}: [{', '.join(plugins)}]\n"
    if line not in text:
        raise SystemExit(f"the {name} chain of {CONFIGS[SHIPPED]} changed; update {__file__}")
    chain: Sequence[str] = plugins
    if variant == "none":
        chain = ()
    elif variant.startswith("-") and variant[1:] in plugins:
        chain = [p for p in plugins if p != variant[1:]]
    elif variant.startswith("+") and variant[1:] in plugins:
        chain = [variant[1:]]
    elif variant == "audit-log":
        text = text.replace("      target: kafka\n", "      target: log\n", 1)
    elif variant.startswith("audit:"):  # audit:KEY=VALUE, a key of the audit's config
        key, _, value = variant[6:].partition("=")
        text = text.replace("      key: hash\n", f"      key: hash\n      {key}: {value}\n", 1)
    elif variant.startswith("correlation:"):  # correlation:KEY=VALUE (to_records=false: no header on records)
        key, _, value = variant[12:].partition("=")
        use = "    use: correlation "
        if use not in text:
            raise SystemExit(f"the correlation handler of {CONFIGS[SHIPPED]} changed; update {__file__}")
        text = text.replace(use, f"    config: {{{key}: {value}}}\n{use}", 1)
    elif variant == "librdkafka":  # both producers (business, and the internal one audit writes with)
        text = text.replace("engine: ${SIDECAR_PRODUCER_ENGINE:aiokafka}", "engine: librdkafka", 1)
    elif variant.startswith("pass:"):  # pass:N[+PLUGIN...]: N pass-through layers, then those plugins
        count, *kept = variant[5:].split("+")
        if any(p not in plugins for p in kept):
            raise SystemExit(f"unknown plugin in {variant!r}: the chain's are {plugins}")
        layers = [f"pass{i}" for i in range(int(count))]
        chain = [*layers, *kept]
        declared = "".join(f"  {layer}:\n    use: pass-through\n" for layer in layers)
        text = text.replace("  dirs: []", f"  dirs: [{PASS_THROUGH}]", 1)
        text = text.replace("handlers:\n", f"handlers:\n{declared}", 1)
    elif variant == "no-idle":
        chain = [p for p in plugins if p != "audit"]
        text = re.sub(r"(?m)^(  default(-consumer)?: \[.*), audit(.*\])$", r"\1\3", text)
    else:
        raise SystemExit(f"unknown variant {variant!r}")
    text = text.replace(line, f"  {name}: [{', '.join(chain)}]\n")
    path = work / f"ablation-{scenario}-{re.sub(r'[^a-z0-9]', '_', variant)}.yml"
    path.write_text(text, encoding="utf-8")
    return path


PROFILE: list[Any] = []
"""With ``--profile``: (output file, seconds) of the next run, then its py-spy process."""
STATS: dict[int, list[tuple[int, int, int]]] = {}
"""(minor faults, user ticks, system ticks) of each pid, read when the backend reads the CPU."""


def start_profiler(pid: int) -> None:
    """With ``--profile``: py-spy (non-blocking, raw format) samples ``pid`` for the configured seconds."""
    if PROFILE:
        out, seconds = PROFILE[0]
        command = [str(Path(sys.executable).with_name("py-spy")), "record", "--nonblocking", "--rate", str(PROFILE_HZ),
                   "--format", "raw", "--duration", str(seconds), "--pid", str(pid), "-o", str(out)]  # fmt: skip
        PROFILE[1:] = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]


def _cpu_and_stats(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    stats = STATS.setdefault(pid, [])
    snapshot = (int(fields[7]), int(fields[11]), int(fields[12]))
    if not stats:  # the window starts
        start_profiler(pid)
    stats[1:] = [snapshot] if stats else []
    if not stats:
        stats.append(snapshot)
    return (snapshot[1] + snapshot[2]) / os.sysconf("SC_CLK_TCK")


async def run(args: argparse.Namespace, bootstrap: str, work: Path) -> dict[str, list[Row]]:
    suite.process_cpu_seconds = _cpu_and_stats  # type: ignore[attr-defined]  # the backend reads it
    settings = Settings(args.duration, args.warmup, 8, args.record_size, args.rate, args.records, args.partitions,
                        False, sidecar_env(args.sidecar_src), bootstrap, work)  # fmt: skip
    configs = {variant: variant_config(work, variant, args.scenario) for variant in args.variants}
    topic = ""
    if args.scenario == "reactive":
        topic = await fill_topic(settings, "ablation", json_values=True)
        print(f"topic {topic}: {args.records} records of {args.record_size} B in {args.partitions} partitions")
    rows: dict[str, list[Row]] = {variant: [] for variant in args.variants}
    for rep in range(1, args.reps + 1):
        order = args.variants if rep % 2 else list(reversed(args.variants))  # alternate who goes first
        for variant in order:
            row = Row(args.scenario, variant, rep)
            env = {**(sidecar_env(args.before_src) if variant.startswith("before:") else settings.sidecar_env),
                   **variant_env(args.engines)}  # fmt: skip
            STATS.clear()
            PROFILE.clear()
            if args.profile:
                args.profile.mkdir(parents=True, exist_ok=True)
                PROFILE[:] = [(args.profile / f"{variant.replace(':', '-')}-{rep}.txt", args.profile_seconds)]
            if args.scenario == "reactive":
                await reactive_sidecar(settings, Variant(configs[variant], "hypercorn", env), row, topic)
            else:
                await produce(dataclasses.replace(settings, sidecar_env=env), configs[variant], row, args.scenario)
            if len(PROFILE) > 1:
                PROFILE[1].wait()
            if STATS:
                ((first, last),) = STATS.values()
                faults, user, system = (b - a for a, b in zip(first, last, strict=True))
                row.note = (f"user {user / (user + system):.0%}, {faults / row.records:.3f} faults/rec, "
                            f"peak RSS {row.peak_rss_mb:.0f} MB; {row.note}")  # fmt: skip
            rows[variant].append(row)
            print(f"[rep {rep}] {variant:14} {row.rate:10,.0f} rec/s {row.cpu_us_per_record:6.2f} µs/rec  "
                  f"p99 {row.p99_ms:6.2f} ms  {row.note}", flush=True)  # fmt: skip
    return rows


async def produce(settings: Settings, config: Path, row: Row, scenario: str) -> None:
    """The suite's produce-100 (8 clients, closed loop) or produce-1 (open loop) scenario against ``config``."""
    with sidecar_process(config, settings.bootstrap, settings.work, env_extra=settings.sidecar_env) as side:
        STATS.clear()
        _cpu_and_stats(side.pid)  # starts the profiler too
        if scenario == "produce1":
            await produce1_http(settings, side, row)
        else:
            await produce_http(settings, side, row, 100)  # its warm-up is in the shares and faults, not the CPU
        _cpu_and_stats(side.pid)
        row.note = await audit_drops(side)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--bootstrap", default=None, help="default: $KAFKA_SIDECAR_BOOTSTRAP or a fresh broker")
    parser.add_argument("--scenario", choices=sorted(CHAINS), default="reactive")
    parser.add_argument("--engines", default="hypercorn", help="every variant's engines, as bench/suite.py names them "
                        "(uvicorn+librdkafka: the container image's); default: the pip install's")  # fmt: skip
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds (produce scenarios)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first (produce scenarios)")
    parser.add_argument("--rate", type=float, default=500.0, help="requests/s (produce1)")
    parser.add_argument("--records", type=int, default=300_000, help="records delivered (reactive)")
    parser.add_argument("--record-size", type=int, default=1024)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--variants", type=lambda t: t.split(","), default=["shipped", "bare", "none"])
    parser.add_argument("--sidecar-src", type=Path, default=None, help="run the sidecars from this checkout")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy --nonblocking raw profiles go here")
    parser.add_argument("--profile-seconds", type=int, default=3, help="seconds profiled from the window's start")
    parser.add_argument("--before-src", type=Path, default=None, help="the checkout 'before:' variants run")
    args = parser.parse_args(argv)
    print(f"load average before: {load_average()}; {' '.join([Path(sys.executable).name, *sys.argv])}")
    with kafka_bootstrap(args.bootstrap) as bootstrap, tempfile.TemporaryDirectory(prefix="ablation-") as tmp:
        rows = asyncio.run(run(args, bootstrap, Path(tmp)))
    print(f"load average after: {load_average()}")
    print(
        f"{'variant':14} {'median':>7} {'min':>7} {'max':>7}  CPU µs/record over {args.reps} reps  "
        "(rec/s median, p99 ms median)"
    )
    for variant, group in rows.items():
        cpu = [r.cpu_us_per_record for r in group]
        rate = statistics.median(r.rate for r in group)
        p99 = statistics.median(r.p99_ms for r in group)
        print(f"{variant:14} {statistics.median(cpu):7.2f} {min(cpu):7.2f} {max(cpu):7.2f}  ({rate:,.0f}, {p99:.2f})")
    print_paired_ratios(rows, "bare" if "bare" in rows else args.variants[-1])
    return 0


def print_paired_ratios(rows: dict[str, list[Row]], reference: str) -> None:
    """Each variant's CPU per record over ``reference``'s in the same rep (run back to back, so a busy
    stretch of the machine weighs on both): the median of those ratios, and their quartiles. On this
    machine it spreads far less than a ratio of two medians taken over different minutes."""
    base = rows[reference]
    print(f"paired with {reference} (each rep's ratio; median, quartiles):")
    for variant, group in rows.items():
        if variant == reference or len(group) < 2:
            continue
        ratios = [r.cpu_us_per_record / b.cpu_us_per_record for r, b in zip(group, base, strict=True)]
        low, _, high = statistics.quantiles(ratios, n=4)
        print(f"  {variant:14} {statistics.median(ratios):.3f}x  ({low:.3f}-{high:.3f}; {len(ratios)} reps)")


if __name__ == "__main__":
    os.chdir(REPO)
    raise SystemExit(main())
