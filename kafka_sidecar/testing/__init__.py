"""Helpers for teams testing a handler or plugin of their own: no broker, Maven or Java involved.

:func:`running_sidecar` builds a sidecar from a ``chains.yml`` string and yields an httpx client bound to
its ASGI app in-process (see docs/writing-plugins.md). The Kafka broker harness, its pytest fixtures and
the other test servers of this repository are the separate ``kafka-sidecar-testing`` distribution
(``testing/`` in the source tree), never part of the runtime wheel.
"""

from kafka_sidecar.testing._sidecar import RunningSidecar, running_sidecar

__all__ = ["RunningSidecar", "running_sidecar"]
