"""Operational metrics: latency histograms and error counters for /metrics.

Contract: ``METRICS`` is this process's accumulator. The hot path only adds
to an in-memory dict (``observe_eod``, ``observe_check``,
``count_check_failure``, ``count_dns_error``, ``count_store_error``,
``count_learn``): no I/O, no lock, a few hundred nanoseconds. The
statistics recorder drains it (``take``) at each flush into the store's
all-time hash ``stats:t:{node}`` (fields prefixed ``m:``), so every worker of
a gateway and every node of a cluster add up, as the outcome counters do;
a failed flush keeps the increments for the next one. A process without a
recorder (statistics off) keeps a bounded set of fields in memory.
``render(fields, node)`` turns the stored fields into Prometheus text
families (histograms with cumulative ``le`` buckets, ``_sum`` and
``_count``; counters); ``build_info`` is the ``mailmoat_build_info`` gauge.
A forked worker starts with an empty accumulator.
"""

from __future__ import annotations

import bisect
import os
import platform
from collections import defaultdict
from collections.abc import Mapping

PREFIX = "m:"
# Seconds; the last bucket (+Inf) is implicit.
EOD_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CHECK_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)

# histogram name -> (bucket bounds, label name or "", help text)
HISTOGRAMS: dict[str, tuple[tuple[float, ...], str, str]] = {
    "eod": (
        EOD_BUCKETS,
        "",
        "Seconds from the end of DATA to the reply (checks and delivery), per message.",
    ),
    "check": (
        CHECK_BUCKETS,
        "check",
        "Seconds one check took per run, by check (a check that never waits takes microseconds).",
    ),
}
# counter name -> (label names, help text)
COUNTERS: dict[str, tuple[tuple[str, ...], str]] = {
    "check_failures": (
        ("check", "kind"),
        "Check runs that failed, by check and kind (error, timeout, store).",
    ),
    "dns_errors": (
        ("rcode",),
        "DNS lookups that got no usable answer, by rcode (SERVFAIL, REFUSED, ..., timeout, error).",
    ),
    "store_errors": (("backend",), "Store operations that failed, by backend."),
    "learn": (
        ("label",),
        "Messages learned on request (dashboard, mailmoat learn, feedback API), by label.",
    ),
}


class Metrics:
    def __init__(self) -> None:
        self.pending: defaultdict[str, float] = defaultdict(float)
        # histogram -> label -> (bucket bounds, bucket field names, sum field name)
        self._keys: dict[str, dict[str, tuple[tuple[float, ...], tuple[str, ...], str]]] = {
            name: {} for name in HISTOGRAMS
        }

    def _bucket_keys(self, name: str, label: str) -> tuple[tuple[float, ...], tuple[str, ...], str]:
        bounds = HISTOGRAMS[name][0]
        base = f"{PREFIX}h|{name}|{label}|"
        keys = bounds, tuple(f"{base}{i}" for i in range(len(bounds) + 1)), f"{base}sum"
        self._keys[name][label] = keys
        return keys

    def observe(self, name: str, seconds: float, label: str = "") -> None:
        keys = self._keys[name].get(label) or self._bucket_keys(name, label)
        pending = self.pending
        pending[keys[1][bisect.bisect_left(keys[0], seconds)]] += 1
        pending[keys[2]] += seconds

    def count(self, name: str, *labels: str, amount: float = 1.0) -> None:
        self.pending[f"{PREFIX}c|{name}|{'|'.join(labels)}"] += amount

    def take(self) -> dict[str, float]:
        """What accumulated since the last ``take`` (to be added to the store)."""
        taken, self.pending = self.pending, defaultdict(float)
        return taken

    def reset(self) -> None:
        self.pending = defaultdict(float)


METRICS = Metrics()
os.register_at_fork(after_in_child=METRICS.reset)


def observe_eod(seconds: float) -> None:
    METRICS.observe("eod", seconds)


def observe_check(check: str, seconds: float) -> None:
    METRICS.observe("check", seconds, check)


def count_check_failure(check: str, kind: str) -> None:
    METRICS.count("check_failures", check, kind)


def count_dns_error(rcode: str) -> None:
    METRICS.count("dns_errors", rcode)


def count_store_error(backend: str) -> None:
    METRICS.count("store_errors", backend)


def count_learn(label: str) -> None:
    METRICS.count("learn", label)


# -- rendering ------------------------------------------------------------------


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in pairs) + "}"


def render(fields: Mapping[str, float], node: str) -> list[str]:
    """Prometheus text lines for the ``m:`` fields of the all-time hash.
    Every family is declared (HELP and TYPE) even before it has samples."""
    histograms: dict[tuple[str, str], dict[str, float]] = {}
    counters: dict[str, dict[tuple[str, ...], float]] = {name: {} for name in COUNTERS}
    for key, value in fields.items():
        if not key.startswith(PREFIX):
            continue
        kind, name, *rest = key[len(PREFIX) :].split("|")
        if kind == "h" and name in HISTOGRAMS and len(rest) == 2:
            histograms.setdefault((name, rest[0]), {})[rest[1]] = value
        elif kind == "c" and name in COUNTERS and len(rest) == len(COUNTERS[name][0]):
            counters[name][tuple(rest)] = value
    lines: list[str] = []
    for name, (bounds, label_name, help_text) in HISTOGRAMS.items():
        metric = f"mailmoat_{name}_seconds"
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} histogram"]
        for (hist_name, label), values in sorted(histograms.items()):
            if hist_name != name:
                continue
            base = [("node", node)] + ([(label_name, label)] if label_name else [])
            running = 0.0
            for index, bound in enumerate([*bounds, float("inf")]):
                running += values.get(str(index), 0.0)
                le = "+Inf" if bound == float("inf") else f"{bound:g}"
                lines.append(f"{metric}_bucket{_labels([*base, ('le', le)])} {running:g}")
            lines.append(f"{metric}_sum{_labels(base)} {values.get('sum', 0.0):.6g}")
            lines.append(f"{metric}_count{_labels(base)} {running:g}")
    for name, (label_names, help_text) in COUNTERS.items():
        metric = f"mailmoat_{name}_total"
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} counter"]
        for labels, value in sorted(counters[name].items()):
            pairs = [("node", node), *zip(label_names, labels, strict=True)]
            lines.append(f"{metric}{_labels(pairs)} {value:g}")
    return lines


def build_info(version: str) -> list[str]:
    labels = _labels([("version", version), ("python", platform.python_version())])
    return [
        "# HELP mailmoat_build_info The running mailmoat's version (value always 1).",
        "# TYPE mailmoat_build_info gauge",
        f"mailmoat_build_info{labels} 1",
    ]
