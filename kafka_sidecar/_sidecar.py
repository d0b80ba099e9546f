"""The assembled sidecar: handler instances, compiled chains, and the start/stop lifecycle."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

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
from kafka_sidecar._config.yaml_source import Loc
from kafka_sidecar._errors import ConfigError, ConfigProblem, StartFailed
from kafka_sidecar._http.problems import problem_reply
from kafka_sidecar._lifecycle import call_lifecycle_hook, collect_plugin_routes, shape_problem
from kafka_sidecar._resources import assemble_resources
from kafka_sidecar._shutdown import ShutdownBudget
from kafka_sidecar._view import sidecar_view

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

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
    """Built once from a :class:`Blueprint`; chains are compiled here and never change afterwards.

    Assembly (this constructor) builds every handler, compiles the chains and collects plugin routes;
    it connects nowhere, so ``kafka-sidecar check`` runs exactly this and ``run`` then calls :meth:`start`.
    Every assembly problem (a factory that fails, a handler of the wrong shape, a route clash) is
    reported at once in one :class:`ConfigError`, located at the handler's declaration.
    """

    def __init__(self, blueprint: Blueprint, *, http_boundary: ErrorBoundary | None = None) -> None:
        self.blueprint = blueprint
        self.config = blueprint.config
        self.pm = blueprint.catalog.pm
        self.resources = assemble_resources(blueprint)
        problems: list[ConfigProblem] = []
        self.instances = self._build_instances(problems)
        if problems:
            raise ConfigError(problems)
        boundary = http_boundary or problem_reply
        self.routes = tuple(
            CompiledRoute(plan, self._compile(f"{' '.join(plan.methods)} {plan.path}", plan.links, boundary))
            for plan in blueprint.routes
        )
        self.consumers = tuple(self._compile_consumer(plan) for plan in blueprint.consumers)
        self._started: list[object] = []
        self._hooks_started = False
        self.view = sidecar_view(self)
        """What hooks see of this sidecar."""
        self.plugin_routes: tuple[BaseRoute, ...] = collect_plugin_routes(self, self.view)
        """Routes plugins mount beside the chain routes, checked for clashes (``create_app`` mounts them)."""
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

    def _where(self, name: str) -> Loc:
        return self.blueprint.locations.get(name) or Loc(self.blueprint.file, 1, 1)

    def _build_instances(self, problems: list[ConfigProblem]) -> dict[str, object]:
        blueprint = self.blueprint
        terminals = {route.links[-1] for route in blueprint.routes}
        terminals.update(consumer.links[-1] for consumer in blueprint.consumers)
        used = {name for route in blueprint.routes for name in route.links}
        used.update(name for consumer in blueprint.consumers for name in consumer.links)
        instances: dict[str, object] = {}
        for name, plan in blueprint.handlers.items():
            if name not in used:
                continue
            what = f"handler type {plan.spec.name!r} from {plan.provider}"
            try:
                instance = plan.spec.factory(plan.config, self.resources)
            except Exception as exc:
                problems.append(self._where(name).problem(name, f"{what} failed to build: {exc!r}"))
                continue
            shape = shape_problem(instance, "terminal" if name in terminals else "middleware")
            if shape is not None:
                problems.append(self._where(name).problem(name, f"the factory of {what} returned {shape}"))
                continue
            instances[name] = instance
        return instances

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
        middleware = [(info, cast(Handler, self.instances[info.name])) for info in infos[:-1]]
        terminal = (infos[-1], cast(Terminal, self.instances[infos[-1].name]))
        return middleware, terminal

    def _compile(self, name: str, names: tuple[str, ...], boundary: ErrorBoundary | None) -> Chain:
        middleware, terminal = self._links(names)
        return compile_chain(name, middleware, terminal, boundary)

    def _compile_consumer(self, plan: ConsumerPlan) -> CompiledConsumer:
        source = self.instances[plan.links[-1]]
        if not isinstance(source, SourceTerminal):
            raise ConfigError(
                [
                    self._where(plan.links[-1]).problem(
                        f"consumers.{plan.name}", f"handler {plan.links[-1]!r} does not implement SourceTerminal"
                    )
                ]
            )
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
        client bound, a tracer subscribed). If any step fails, what already started is stopped again
        in reverse order (as :meth:`stop` does) and :class:`StartFailed` names the step.
        """
        step = "the Kafka producer"
        try:
            await self.resources.producer.start()
            await self.resources.internal_producer.start()
            sources = {id(c.source) for c in self.consumers}
            step = "a handler"
            await self._start_all(i for i in self.instances.values() if id(i) not in sources)
            step = "plugins' startup hooks"
            self._hooks_started = True
            failed = await call_lifecycle_hook(self.pm, "kafka_sidecar_startup", self.view)
            if failed:
                reasons = "; ".join(f"{name}: {reason}" for name, reason in failed.items())
                raise StartFailed(f"startup hook of plugin(s) {', '.join(failed)} failed ({reasons})")
            step = "a consumer source"
            await self._start_all(c.source for c in self.consumers)
        except BaseException as exc:
            log.error("start-up failed at %s; stopping what started", step)
            await self.stop()
            if isinstance(exc, StartFailed | asyncio.CancelledError) or not isinstance(exc, Exception):
                raise
            raise StartFailed(f"kafka-sidecar failed to start ({step}): {exc!r}") from exc

    async def _start_all(self, instances: Iterable[object]) -> None:
        for instance in instances:
            if isinstance(instance, Lifecycle) and instance not in self._started:
                await instance.start()
                self._started.append(instance)

    async def stop(self, budget_s: float | None = None) -> None:
        """Reverse of start: plugin shutdown hooks, sources first, other handlers, then the producer flush.

        Always completes: a failing hook, handler stop or cleanup is logged and the rest still run. Everything
        shares one budget (default ``server.shutdown_timeout_s`` from :meth:`begin_shutdown`, or from now): a
        step still running when it is spent is cancelled and named in the log, so the process exits in time.
        """
        if budget_s is not None:
            budget = ShutdownBudget(budget_s)
        else:
            budget = self._shutdown_budget or ShutdownBudget(self.config.server.shutdown_timeout_s)
        try:
            if self._hooks_started:
                self._hooks_started = False
                await call_lifecycle_hook(self.pm, "kafka_sidecar_shutdown", self.view, run=budget.run)
        finally:
            try:
                while self._started:
                    instance = self._started.pop()
                    await budget.run(f"stopping handler {type(instance).__name__}", instance.stop())  # type: ignore[attr-defined]
            finally:
                try:
                    # The business producer flushes first; the internal one (audit, dead letters) gets what is
                    # left. Each bounds its own flush, so it always closes (a cancelled stop would not).
                    for producer, reserve in ((self.resources.producer, 0.5), (self.resources.internal_producer, 0.0)):
                        try:
                            await producer.stop(flush_timeout=budget.remaining(reserve=reserve))
                        except Exception:
                            log.exception("stopping a Kafka producer failed")
                finally:
                    await budget.run("resource cleanups", self.resources.close())
