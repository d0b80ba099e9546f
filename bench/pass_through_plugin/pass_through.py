"""The ``pass:N`` variants' plugin (``bench/chain_ablation.py``): a middleware that only calls the next link.

Loaded from ``plugins.dirs`` like a deployment's own plugin, through the public API only, so a chain of N
of them costs what the chain's layers cost before any plugin does its work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kafka_sidecar import Exchange, HandlerSpec, Next, Reply, Resources, hookimpl


@dataclass(frozen=True, slots=True)
class PassThroughConfig:
    pass


class PassThrough:
    def __init__(self, config: PassThroughConfig, resources: Resources) -> None:
        pass

    async def __call__(self, exchange: Exchange, call_next: Next) -> Reply:
        return await call_next(exchange)


@hookimpl
def kafka_sidecar_register_handlers(register: Callable[[HandlerSpec[PassThroughConfig]], None]) -> None:
    register(
        HandlerSpec(
            "pass-through",
            PassThrough,
            PassThroughConfig,
            kind="middleware",
            description="Pass the exchange on (bench/chain_ablation.py).",
        )
    )
