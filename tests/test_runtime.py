"""The runtime's heap freeze: what a serving process built at start is left
alone by its garbage collections, and a reload lets what it replaced go."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from fakes import FakeResolver, make_config
from mailmoat import runtime as runtime_module
from mailmoat.runtime import Runtime, freeze_heap
from mailmoat.store.sqlite import SqliteStore


@pytest.fixture(autouse=True)
def _collector_restored() -> Iterator[None]:
    """The test process's collector as it was: nothing frozen by these
    tests, its thresholds. (A freeze made before, e.g. by ``mailmoat eval``
    run in this process, is not the runtime's and stays.)"""
    thresholds = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    gc.unfreeze()
    yield
    gc.unfreeze()
    runtime_module._heap.frozen = False
    gc.set_threshold(*thresholds)
    if frozen_before:
        gc.freeze()


async def _opened() -> Runtime:
    return await Runtime.open(
        make_config(), "scan", store=SqliteStore(":memory:"), resolver=FakeResolver()
    )


async def test_a_reload_in_a_frozen_process_lets_the_replaced_pipeline_go() -> None:
    runtime = await _opened()
    try:
        old = runtime.pipeline
        old.itself = old  # type: ignore[attr-defined]  # a cycle: only the collector frees it
        gone = weakref.ref(old)
        del old
        freeze_heap()
        assert gc.get_freeze_count() > 0
        runtime.reload(runtime.config)
        # Unfrozen, collected, frozen again: the old pipeline's cycle is gone
        # and the new pipeline is frozen with the rest.
        assert gone() is None
        assert gc.get_freeze_count() > 0
    finally:
        await runtime.close()


async def test_a_reload_leaves_a_freeze_not_made_by_freeze_heap_alone() -> None:
    runtime = await _opened()
    try:
        runtime.reload(runtime.config)
        assert gc.get_freeze_count() == 0
        gc.freeze()  # as ``mailmoat eval`` does
        frozen = gc.get_freeze_count()
        built = runtime.pipeline
        runtime.reload(runtime.config)
        assert gc.get_freeze_count() == frozen
        assert any(o is runtime.pipeline for o in gc.get_objects())  # not frozen
        assert built is not runtime.pipeline
    finally:
        await runtime.close()


async def test_freezing_collects_first() -> None:
    """Garbage alive at the freeze would otherwise stay forever."""

    class Node:
        pass

    node = Node()
    node.itself = node  # type: ignore[attr-defined]
    gone = weakref.ref(node)
    del node
    freeze_heap()
    assert gone() is None


def test_freezing_collects_the_young_generation_less_often() -> None:
    gc.set_threshold(700, 10, 10)
    freeze_heap()
    assert gc.get_threshold() == (10_000, 10, 10)
