"""Check order: waves come from each spec's ``requires``; bad specs are refused."""

from __future__ import annotations

import importlib
import inspect

import pytest

from fakes import FakeResolver, make_config, make_services
from mailmoat.checks import registry
from mailmoat.checks.base import Check
from mailmoat.checks.order import RequirementError, validate, wave_numbers
from mailmoat.checks.registry import CHECK_MODULES, build_checks, check_specs, requirements
from mailmoat.checks.spec import CheckSpec
from mailmoat.config import ListsConfig
from mailmoat.core.symbols import Stage
from mailmoat.pipeline import Pipeline

# Every check the registry can build, by stage and wave, each wave in build
# order. A change here is a change in the order checks see each other's results.
# Until the specs' requires made them, numbered phases did; they gave these
# same waves except at RCPT, where greylisting (phase 20) waited for the
# recipient rate limit (phase 10) although it reads nothing the rate limit
# finds at the same RCPT: a stage's evidence reaches the transaction only
# after its last wave.
EXPECTED_WAVES: dict[Stage, list[list[str]]] = {
    Stage.CONNECT: [["lists"], ["ratelimit", "dnsbl", "rdns"]],
    Stage.HELO: [["lists"], ["helo", "dnsbl", "rdns", "reputation"]],
    Stage.MAIL: [["lists"], ["ratelimit"]],
    Stage.RCPT: [["ratelimit", "greylist"]],
    Stage.DATA: [
        [
            "headers",
            "size",
            "spf",
            "dkim",
            "urlbl",
            "rules",
            "classifier",
            "attachments",
            "bulk",
        ],
        ["dmarc"],
        ["auth_results"],
    ],
}


def _check_classes() -> list[type[Check]]:
    """Every check class, in build order (registry order, then definition)."""
    found: list[type[Check]] = []
    for module_name in CHECK_MODULES:
        module = importlib.import_module(module_name)
        classes = [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, Check)
            and cls.__module__ == module_name
            and isinstance(getattr(cls, "stage", None), str)
        ]
        found.extend(sorted(classes, key=lambda cls: inspect.getsourcelines(cls)[1]))
    return found


def _waves_from_requires() -> dict[Stage, list[list[str]]]:
    members = [(cls.name, Stage(cls.stage)) for cls in _check_classes()]
    numbers = wave_numbers(members, requirements())
    table: dict[Stage, list[list[str]]] = {stage: [] for stage in Stage}
    for (name, stage), wave in zip(members, numbers, strict=True):
        while len(table[stage]) <= wave:
            table[stage].append([])
        table[stage][wave].append(name)
    return table


def test_waves_from_requires_are_the_expected_table() -> None:
    assert _waves_from_requires() == EXPECTED_WAVES


def test_every_check_the_allowlist_spares_runs_after_the_lists_of_its_stage() -> None:
    lists_stages = {Stage(cls.stage) for cls in _check_classes() if cls.name == "lists"}
    for cls in _check_classes():
        if cls.name == "lists" or cls.runs_when_allowlisted:
            continue
        if Stage(cls.stage) in lists_stages:
            assert "lists" in requirements()[cls.name], f"{cls.name} at {cls.stage}"


def test_the_checks_specs_are_valid() -> None:
    validate(check_specs())
    for spec in check_specs():
        assert set(spec.requires) <= {s.name for s in check_specs()}


def _spec(name: str, *stages: Stage, requires: tuple[str, ...] = ()) -> CheckSpec:
    return CheckSpec(name, stages, f"The {name} check.", requires=requires)


def test_requiring_an_unknown_check_is_refused() -> None:
    with pytest.raises(RequirementError, match="check b requires 'nope': no such check"):
        validate([_spec("a", Stage.DATA), _spec("b", Stage.DATA, requires=("a", "nope"))])


def test_requiring_a_check_of_a_later_stage_is_refused() -> None:
    with pytest.raises(RequirementError, match="b at helo requires a, which first runs later"):
        validate([_spec("a", Stage.DATA), _spec("b", Stage.HELO, requires=("a",))])
    # Every stage of the dependent counts: at connect, a has not run yet.
    with pytest.raises(RequirementError, match="b at connect requires a"):
        validate([_spec("a", Stage.HELO), _spec("b", Stage.CONNECT, Stage.DATA, requires=("a",))])
    # An earlier stage or the same one is fine.
    validate([_spec("a", Stage.HELO, Stage.DATA), _spec("b", Stage.HELO, requires=("a",))])


def test_a_cycle_of_requirements_is_refused() -> None:
    specs = [
        _spec("a", Stage.DATA, requires=("c",)),
        _spec("b", Stage.DATA, requires=("a",)),
        _spec("c", Stage.DATA, requires=("b",)),
    ]
    with pytest.raises(RequirementError, match="cycle: a -> c -> b -> a"):
        validate(specs)
    with pytest.raises(RequirementError, match="cycle: s -> s"):
        validate([_spec("s", Stage.DATA, requires=("s",))])
    with pytest.raises(RequirementError, match="cycle"):
        wave_numbers([("x", Stage.DATA), ("y", Stage.DATA)], {"x": ("y",), "y": ("x",)})


def test_the_registry_refuses_a_bad_spec_when_it_collects_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = importlib.import_module("mailmoat.checks.dmarc")
    bad = CheckSpec("dmarc", (Stage.DATA,), "x", requires=("auth_results",))
    monkeypatch.setattr(module, "SPEC", bad)
    with pytest.raises(RequirementError, match="cycle: dmarc -> auth_results -> dmarc"):
        registry.check_specs.__wrapped__()


def test_a_required_check_not_built_leaves_its_dependent_in_the_first_wave() -> None:
    requires = {"dmarc": ("spf", "dkim"), "auth_results": ("spf", "dkim", "dmarc")}
    # dkim disabled: dmarc still waits for spf.
    members = [("spf", Stage.DATA), ("dmarc", Stage.DATA), ("auth_results", Stage.DATA)]
    assert wave_numbers(members, requires) == [0, 1, 2]
    # spf and dkim disabled: dmarc runs first (it sees no SPF or DKIM result).
    assert wave_numbers(members[1:], requires) == [0, 1]
    # A requirement met at an earlier stage does not delay a check.
    assert wave_numbers([("greylist", Stage.RCPT)], {"greylist": ("dnsbl",)}) == [0]


def test_a_pipeline_of_every_check_runs_the_expected_waves() -> None:
    services = make_services(
        make_config(lists=ListsConfig(allow=("198.51.100.0/24",))), resolver=FakeResolver()
    )
    pipeline = Pipeline(services, build_checks(services))
    built = {check.name for check in pipeline.checks}
    assert built == {cls.name for cls in _check_classes()}
    assert {
        stage: [[check.name for check in wave] for wave in stage_waves]
        for stage, stage_waves in pipeline._waves.items()
    } == EXPECTED_WAVES


def test_a_pipeline_without_the_lists_runs_their_dependents_first() -> None:
    services = make_services(resolver=FakeResolver())
    pipeline = Pipeline(services, build_checks(services))
    assert "lists" not in {check.name for check in pipeline.checks}
    names = {
        stage: [[check.name for check in wave] for wave in stage_waves]
        for stage, stage_waves in pipeline._waves.items()
    }
    assert names[Stage.CONNECT] == [["ratelimit", "dnsbl", "rdns"]]
    assert names[Stage.HELO] == [["helo", "dnsbl", "rdns", "reputation"]]
    assert names[Stage.DATA] == EXPECTED_WAVES[Stage.DATA]
