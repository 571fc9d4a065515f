"""One runtime for every door: what ``serve``, ``milter``, ``policy``, ``web``
and ``scan`` run on, built, reloaded and closed the same way.

Contract: ``Runtime.open(config, door)`` builds, in this order: the services
(store, resolver, the classifier model holder; ``build_services``), the
pipeline (the door's checks), and for the doors that score mail as a
service (``serve``, ``milter``, ``policy``) the statistics recorder (with
``[stats] enabled``: attached to the pipeline, flushing in the background),
the cluster model sync, autolearn, the source reputation recorder
(``[reputation] enabled``: attached to the pipeline) and the keeper of
accepted bodies (``quarantine.keep_accepted_days``); then the dashboard
(``web``; ``serve`` with ``[web] enabled`` on its primary worker). ``scan`` gets
services and pipeline only; ``web`` an empty pipeline (no checks to load).
A store that cannot be opened is logged and replaced by a
``RecoveringStore``: clients get the ``store.fail_mode`` answer until it
opens, and the process never dies of it. An unsafe dashboard (non-loopback
without a password) raises ``ConfigError`` after closing what was opened.

``reload(config)`` (SIGHUP, every door) is ``prepare`` then ``apply``: new
services around the open store, model holder and verdict observers (a new
resolver only when ``[dns]`` changed) and a pipeline built from them, the
recorders carried over; ``prepare`` raises with the running runtime
untouched, and nothing it built is registered anywhere, so reloads leak
nothing. ``close()`` undoes ``open`` in reverse: dashboard, autolearn (its
last flush), kept bodies, reputation (its last flush), model sync, statistics (their
last flush), store; a failing step is logged and the next still runs.

``freeze_heap()`` (the serving commands, once their runtime is built, and
``serve`` before its workers fork) collects, then moves everything alive
into the garbage collector's permanent generation, so the rule set, checks
and model built at start are never walked again by a full collection (tens
of thousands of objects) and forked workers keep the parent's pages
shared; it also collects the young generation less often. Frozen objects
are still freed by reference counting when nothing uses them any more (an
old rule set after a reload, once its last session ends); only reference
cycles among them would stay. So a reload in a process ``freeze_heap``
froze unfreezes, collects and freezes again: the cycles of what earlier
reloads replaced are collected then (a full collection per reload), and
what sessions still held at that moment waits for the next reload.

``run_loop`` runs a coroutine on uvloop when it is installed.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from mailmoat.autolearn import AutoLearner
from mailmoat.autolearn import install as install_autolearn
from mailmoat.checks.base import Services
from mailmoat.checks.registry import build_checks
from mailmoat.cluster import ModelSync, start_model_sync
from mailmoat.config import Config
from mailmoat.core.errors import describe as describe
from mailmoat.dns import resolver_from_config
from mailmoat.dns.base import Resolver
from mailmoat.feedback.bodies import BodyKeeper
from mailmoat.feedback.bodies import install as install_bodies
from mailmoat.pipeline import Pipeline
from mailmoat.reputation.recorder import ReputationRecorder
from mailmoat.reputation.recorder import install as install_reputation
from mailmoat.stats.recorder import StatsRecorder
from mailmoat.store import Store, StoreError, open_store
from mailmoat.store.recovering import RecoveringStore

if TYPE_CHECKING:
    from mailmoat.web.server import WebServer

log = logging.getLogger("mailmoat.runtime")

PipelineFactory = Callable[[Services], Pipeline]


@dataclass(frozen=True)
class Door:
    """What a door needs beyond services and pipeline."""

    name: str
    checks: bool = True  # the pipeline runs the configured checks
    background: bool = True  # statistics, model sync, autolearn
    dashboard: Literal["never", "when enabled", "always"] = "never"


DOORS: dict[str, Door] = {
    "serve": Door("serve", dashboard="when enabled"),
    "milter": Door("milter"),
    "policy": Door("policy"),
    "web": Door("web", checks=False, background=False, dashboard="always"),
    "scan": Door("scan", background=False),
}


def build_pipeline(services: Services) -> Pipeline:
    return Pipeline(services, build_checks(services))


def empty_pipeline(services: Services) -> Pipeline:
    return Pipeline(services, [])


async def build_services(config: Config) -> Services:
    url = config.store.url
    store: Store
    try:
        store = open_store(url)
    except StoreError as exc:
        log.error(
            "store cannot be opened, answering with store.fail_mode=%s until it can: %s",
            config.store.fail_mode,
            exc,
        )
        store = RecoveringStore(lambda: open_store(url), str(exc))  # type: ignore[assignment]
    return Services(config=config, store=store, resolver=resolver_from_config(config.dns))


@dataclass
class Runtime:
    config: Config
    services: Services
    pipeline: Pipeline
    door: Door = DOORS["serve"]
    config_path: str | None = None
    pipeline_factory: PipelineFactory = build_pipeline
    recorder: StatsRecorder | None = None
    model_sync: ModelSync | None = None
    learner: AutoLearner | None = None
    reputation: ReputationRecorder | None = None
    bodies: BodyKeeper | None = None
    dashboard: WebServer | None = None
    _closed: bool = field(default=False, repr=False)

    @property
    def node(self) -> str:
        return self.config.node

    @classmethod
    async def open(
        cls,
        config: Config,
        door: str | Door,
        *,
        config_path: str | None = None,
        pipeline_factory: PipelineFactory | None = None,
        store: Store | None = None,
        resolver: Resolver | None = None,
        primary: bool = True,
    ) -> Runtime:
        """Build what ``door`` (a name in ``DOORS``) needs; ``store`` and
        ``resolver`` replace the configured ones (``scan`` without a config
        file, tests)."""
        spec = DOORS[door] if isinstance(door, str) else door
        if store is None:
            services = await build_services(config)
            if resolver is not None:
                services.resolver = resolver
        else:
            services = Services(
                config,
                store,
                resolver if resolver is not None else resolver_from_config(config.dns),
            )
        factory = pipeline_factory or (build_pipeline if spec.checks else empty_pipeline)
        runtime = cls(config, services, factory(services), spec, config_path, factory)
        try:
            await runtime._start(primary)
        except BaseException:
            await runtime.close()
            raise
        return runtime

    async def _start(self, primary: bool) -> None:
        config, services, store = self.config, self.services, self.services.store
        if self.door.background and store is not None:
            if config.stats.enabled:
                self.recorder = StatsRecorder(store, config.stats, config.node)
                self.pipeline.recorders.append(self.recorder)
                await self.recorder.start()
            self.model_sync = start_model_sync(services)
            counter = self.recorder.count if self.recorder is not None else None
            self.learner = install_autolearn(services, counter)
            if self.learner is not None:
                await self.learner.start()
            self.reputation = install_reputation(services)
            if self.reputation is not None:
                self.pipeline.recorders.append(self.reputation)
                await self.reputation.start()
            self.bodies = install_bodies(services)
            if self.bodies is not None:
                await self.bodies.start()
        wanted = self.door.dashboard == "always" or (
            self.door.dashboard == "when enabled" and config.web.enabled and primary
        )
        if wanted and store is not None:
            from mailmoat.web.server import start_dashboard  # uvicorn: only when served

            self.dashboard = await start_dashboard(
                lambda: self.config, store, recorder=self.recorder, model=services.model
            )

    def prepare(self, config: Config) -> tuple[Services, Pipeline]:
        """Services and pipeline for ``config`` sharing what lives as long as
        the process; raises whatever building raises (nothing is changed)."""
        old = self.services
        resolver = old.resolver
        if config.dns != old.config.dns:
            resolver = resolver_from_config(config.dns)
        fresh = Services(config, old.store, resolver, old.clock, old.model, old.verdict_observers)
        return fresh, self.pipeline_factory(fresh)

    def apply(self, config: Config, built: tuple[Services, Pipeline]) -> None:
        """Swap in what ``prepare`` built; open sessions keep their pipeline."""
        if config.store.url != self.config.store.url:
            log.warning("reload: store.url changes need a restart; keeping the open store")
        services, pipeline = built
        pipeline.recorders.extend(self.pipeline.recorders)
        self.config, self.services, self.pipeline = config, services, pipeline
        if _heap.frozen:  # see freeze_heap: what this reload replaced can go
            gc.unfreeze()
            freeze_heap()

    def reload(self, config: Config) -> None:
        self.apply(config, self.prepare(config))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        steps: list[Callable[[], Coroutine[Any, Any, None]]] = []
        if self.dashboard is not None:
            steps.append(self.dashboard.stop)
        if self.learner is not None:
            steps.append(self.learner.stop)
        if self.bodies is not None:
            steps.append(self.bodies.stop)
        if self.reputation is not None:
            steps.append(self.reputation.stop)
        if self.model_sync is not None:
            steps.append(self.model_sync.stop)
        if self.recorder is not None:
            steps.append(self.recorder.stop)
        if self.services.store is not None:
            steps.append(self.services.store.close)
        for step in steps:
            try:
                await step()
            except Exception:
                log.exception("%s shutdown step failed", self.door.name)


# Allocations (net of deallocations) between two young-generation
# collections; Python's default is 700. Most of a message's objects die by
# reference counting, but at 700 those of the messages in flight are
# promoted at every young collection, and the promotions trigger the full
# collections (see freeze_heap).
_YOUNG_THRESHOLD = 10_000


class _Heap:
    """Whether ``freeze_heap`` froze this process (a freeze by anyone else,
    e.g. ``mailmoat eval``'s, is not ours to undo at a reload)."""

    frozen = False


_heap = _Heap()


def freeze_heap() -> None:
    """Collect, then move every object alive into the permanent generation
    (``gc.freeze``), and collect the young generation less often; see the
    module's contract for what that spares and costs."""
    gc.collect()
    gc.freeze()
    _heap.frozen = True
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, _YOUNG_THRESHOLD), middle, old)


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
