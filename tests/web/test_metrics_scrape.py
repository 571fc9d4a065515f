"""``/metrics`` scraped from a real gateway and dashboard on loopback: every
family declared with its type (histograms, counters, gauges, build info),
histogram buckets cumulative and consistent with their counts."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
from dashboard_harness import PASSWORD, running, send_mix

FAMILIES = {
    "mailmoat_eod_seconds": "histogram",
    "mailmoat_check_seconds": "histogram",
    "mailmoat_check_failures_total": "counter",
    "mailmoat_dns_errors_total": "counter",
    "mailmoat_store_errors_total": "counter",
    "mailmoat_learn_total": "counter",
    "mailmoat_autolearn_total": "counter",
    "mailmoat_messages_total": "counter",
    "mailmoat_quarantine_messages": "gauge",
    "mailmoat_build_info": "gauge",
}
_SAMPLE = re.compile(r"^([a-z_]+)\{(.*)\} (\S+)$")


def parse_exposition(text: str) -> tuple[dict[str, str], list[tuple[str, dict[str, str], float]]]:
    """The declared types and the samples; every sample belongs to a declared family."""
    types: dict[str, str] = {}
    samples: list[tuple[str, dict[str, str], float]] = []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _hash, _type, name, kind = line.split(" ")
            assert name not in types, f"{name} declared twice"
            types[name] = kind
        elif line and not line.startswith("#"):
            match = _SAMPLE.match(line)
            assert match, f"not a sample line: {line!r}"
            name, labels = match[1], dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match[2]))
            family = re.sub(r"_(bucket|sum|count)$", "", name)
            assert name in types or types.get(family) == "histogram", f"undeclared: {name}"
            samples.append((name, labels, float(match[3])))
    return types, samples


async def test_metrics_expose_histograms_counters_and_build_info(tmp_path: Path) -> None:
    async with running(tmp_path) as gw:
        await send_mix(gw.port)
        await asyncio.sleep(0.1)
        await gw.recorder.flush()
        async with httpx.AsyncClient(base_url=gw.base_url, auth=("admin", PASSWORD)) as web:
            response = await web.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    types, samples = parse_exposition(response.text)
    assert {name: types.get(name) for name in FAMILIES} == FAMILIES

    def values(name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        return [
            (found, value)
            for sample, found, value in samples
            if sample == name and labels.items() <= found.items()
        ]

    # Messages that reached the end of DATA: accepted, tagged, quarantined,
    # rejected on score, refused for size after DATA.
    ((_, count),) = values("mailmoat_eod_seconds_count")
    assert count >= 5
    buckets = values("mailmoat_eod_seconds_bucket")
    cumulative = [value for _labels, value in buckets]
    assert cumulative == sorted(cumulative) and buckets[-1][0]["le"] == "+Inf"
    assert cumulative[-1] == count
    ((_, total),) = values("mailmoat_eod_seconds_sum")
    assert 0 < total < count * 5
    # Per-check time, one histogram per check the gateway ran.
    checks = {labels["check"] for labels, _v in values("mailmoat_check_seconds_count")}
    assert {"helo", "headers"} <= checks
    ((info, one),) = values("mailmoat_build_info")
    assert one == 1 and info["version"] and info["python"]
