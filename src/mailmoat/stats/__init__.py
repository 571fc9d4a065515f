"""Statistics: counters per minute/hour/day, transaction history, step changes.

Public API: ``StatsRecorder`` (a pipeline recorder; ``mailmoat.runtime``
attaches it), ``read_totals`` / ``read_series`` / ``summary``
(what the CLI and the dashboard show), ``history.search`` and
``detect_steps``. Storage goes through ``mailmoat.store.Store`` only.
"""

from __future__ import annotations

from mailmoat.stats.counters import Totals, read_totals
from mailmoat.stats.history import Filters, search
from mailmoat.stats.recorder import StatsRecorder
from mailmoat.stats.series import VIEWS, parse_since, read_series, summary
from mailmoat.stats.steps import StepEvent, detect_steps

__all__ = [
    "VIEWS",
    "Filters",
    "StatsRecorder",
    "StepEvent",
    "Totals",
    "detect_steps",
    "parse_since",
    "read_series",
    "read_totals",
    "search",
    "summary",
]
