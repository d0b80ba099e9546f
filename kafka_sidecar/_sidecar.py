"""The assembled sidecar: handler instances, compiled chains, and the start/stop lifecycle."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from kafka_sidecar._blueprint import Blueprint, ConsumerPlan, RoutePlan, build_blueprint
from kafka_sidecar._chain import (
    Chain,
    ErrorBoundary,
    Handler,
    Lifecycle,
    LinkInfo,
    SourceTerminal,
    Terminal,
    compile_chain,
)
from kafka_sidecar._errors import PluginError
from kafka_sidecar._http.problems import problem_reply
from kafka_sidecar._resources import assemble_resources
from kafka_sidecar._shutdown import ShutdownBudget
from kafka_sidecar._view import sidecar_view

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    plan: RoutePlan
    chain: Chain


@dataclass(frozen=True, slots=True)
class CompiledConsumer:
    plan: ConsumerPlan
    chain: Chain
    source: SourceTerminal


class Sidecar:
    """Built once from a :class:`Blueprint`; chains are compiled here and never change afterwards."""

    def __init__(self, blueprint: Blueprint, *, http_boundary: ErrorBoundary | None = None) -> None:
        self.blueprint = blueprint
        self.config = blueprint.config
        self.pm = blueprint.catalog.pm
        self.resources = assemble_resources(blueprint)
        used = {name for route in blueprint.routes for name in route.links}
        used.update(name for consumer in blueprint.consumers for name in consumer.links)
        self.instances: dict[str, object] = {}
        for name, plan in blueprint.handlers.items():
            if name not in used:
                continue
            try:
                self.instances[name] = plan.spec.factory(plan.config, self.resources)
            except Exception as exc:
                raise PluginError(
                    f"handler {name!r} (type {plan.spec.name!r} from {plan.provider}) failed to build: {exc!r}"
                ) from exc
        boundary = http_boundary or problem_reply
        self.routes = tuple(
            CompiledRoute(plan, self._compile(f"{' '.join(plan.methods)} {plan.path}", plan.links, boundary))
            for plan in blueprint.routes
        )
        self.consumers = tuple(self._compile_consumer(plan) for plan in blueprint.consumers)
        self._started: list[object] = []
        self.view = sidecar_view(self)
        """What hooks see of this sidecar."""
        self._shutdown_budget: ShutdownBudget | None = None

    def begin_shutdown(self) -> None:
        """Start the shutdown clock now (on SIGTERM): request draining and :meth:`stop` share one budget."""
        if self._shutdown_budget is None:
            self._shutdown_budget = ShutdownBudget(self.config.server.shutdown_timeout_s)

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        *,
        env: Mapping[str, str] | None = None,
        extra_plugin_dirs: Iterable[str | Path] = (),
        extra_plugins: Iterable[tuple[object, str]] = (),
    ) -> Sidecar:
        """Load, validate and assemble ``path`` (nothing connects until :meth:`start`)."""
        return cls(
            build_blueprint(path, env=env, extra_plugin_dirs=tuple(extra_plugin_dirs), extra_plugins=extra_plugins)
        )

    def chain_for(self, method: str, path: str) -> Chain:
        """The compiled chain serving ``method path``, the route template as written in ``chains.yml``.

        For embedding: await ``chain(Exchange("http", path, HttpRequest(...)))`` to run a route in-process.
        """
        for route in self.routes:
            if route.plan.path == path and method.upper() in route.plan.methods:
                return route.chain
        raise LookupError(f"no route {method.upper()} {path} in {self.blueprint.file}")

    def _links(self, names: tuple[str, ...]) -> tuple[list[tuple[LinkInfo, Handler]], tuple[LinkInfo, Terminal]]:
        infos = [LinkInfo(name, self.blueprint.handlers[name].spec.name) for name in names]
        middleware = [(info, _as_handler(self.instances[info.name])) for info in infos[:-1]]
        terminal = (infos[-1], _as_terminal(self.instances[infos[-1].name]))
        return middleware, terminal

    def _compile(self, name: str, names: tuple[str, ...], boundary: ErrorBoundary | None) -> Chain:
        middleware, terminal = self._links(names)
        return compile_chain(name, middleware, terminal, boundary)

    def _compile_consumer(self, plan: ConsumerPlan) -> CompiledConsumer:
        source = self.instances[plan.links[-1]]
        if not isinstance(source, SourceTerminal):
            raise PluginError(f"consumer {plan.name!r}: handler {plan.links[-1]!r} does not implement SourceTerminal")
        chain = self._compile(plan.name, plan.links, None)
        source.attach(chain, plan.name)
        return CompiledConsumer(plan, chain, source)

    def not_ready(self) -> list[str]:
        """Why handlers with a ``readiness()`` method (e.g. stream processors) are not ready; empty when all are."""
        reasons = []
        for instance in self.instances.values():
            probe = getattr(instance, "readiness", None)
            reason = probe() if callable(probe) else None
            if isinstance(reason, str):
                reasons.append(reason)
        return reasons

    async def start(self) -> None:
        """Connect, start every handler, run plugins' startup hooks, and only then start consuming.

        Sources start last so that nothing is consumed before plugins are ready (a schema-registry
        client bound, a tracer subscribed).
        """
        await self.resources.producer.start()
        await self.resources.internal_producer.start()
        sources = {id(c.source) for c in self.consumers}
        await self._start_all(i for i in self.instances.values() if id(i) not in sources)
        for result in self.pm.hook.kafka_sidecar_startup(sidecar=self.view):
            if inspect.isawaitable(result):
                await result
        await self._start_all(c.source for c in self.consumers)

    async def _start_all(self, instances: Iterable[object]) -> None:
        for instance in instances:
            if isinstance(instance, Lifecycle) and instance not in self._started:
                await instance.start()
                self._started.append(instance)

    async def stop(self, budget_s: float | None = None) -> None:
        """Reverse of start: plugin shutdown hooks, sources first, other handlers, then the producer flush.

        Everything shares one budget (default ``server.shutdown_timeout_s`` from :meth:`begin_shutdown`, or
        from now): a step still running when
        it is spent is cancelled and named in the log, so the process always exits in time.
        """
        if budget_s is not None:
            budget = ShutdownBudget(budget_s)
        else:
            budget = self._shutdown_budget or ShutdownBudget(self.config.server.shutdown_timeout_s)
        for result in self.pm.hook.kafka_sidecar_shutdown(sidecar=self.view):
            if inspect.isawaitable(result):
                await budget.run("a plugin's shutdown hook", result)
        while self._started:
            instance = self._started.pop()
            await budget.run(f"stopping handler {type(instance).__name__}", instance.stop())  # type: ignore[attr-defined]
        # The business producer flushes first; the internal one (audit, dead letters) gets what is left.
        await self.resources.producer.stop(flush_timeout=budget.remaining(reserve=0.5))
        await self.resources.internal_producer.stop(flush_timeout=budget.remaining())
        await budget.run("resource cleanups", self.resources.close())


def _as_handler(instance: object) -> Handler:
    if not callable(instance):
        raise PluginError(f"handler instance {instance!r} is not callable")
    return instance


def _as_terminal(instance: object) -> Terminal:
    if not callable(instance):
        raise PluginError(f"terminal instance {instance!r} is not callable")
    return instance
