"""Check specs: each check module declares itself, and the declarations hold."""

from __future__ import annotations

import importlib
import inspect

import pytest

from mailmoat.checks import doors
from mailmoat.checks.base import Check
from mailmoat.checks.order import wave_numbers
from mailmoat.checks.registry import (
    CHECK_MODULES,
    all_specs,
    check_names,
    check_specs,
    find_symbol,
    requirements,
    runner_settings,
    spec_of,
)
from mailmoat.checks.spec import CheckSpec, FamilySpec, SymbolSpec
from mailmoat.config import CheckSettings, Config
from mailmoat.core.symbols import Evidence, Stage


def _check_classes(module_name: str) -> list[type[Check]]:
    module = importlib.import_module(module_name)
    return [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, Check)
        and cls.__module__ == module_name
        and isinstance(getattr(cls, "stage", None), str)
    ]


@pytest.mark.parametrize("module_name", CHECK_MODULES)
def test_every_check_class_runs_under_its_modules_spec(module_name: str) -> None:
    spec = importlib.import_module(module_name).SPEC
    classes = _check_classes(module_name)
    assert classes, f"{module_name} defines no check"
    for cls in classes:
        assert cls.name == spec.name
        assert Stage(cls.stage) in spec.stages
    assert {Stage(cls.stage) for cls in classes} == set(spec.stages)


def test_symbols_are_declared_once_with_a_description_and_group() -> None:
    seen: dict[str, str] = {}
    for spec in all_specs():
        assert spec.summary.strip()
        for symbol in spec.symbols:
            assert symbol.name not in seen, f"{symbol.name}: {seen.get(symbol.name)}"
            seen[symbol.name] = spec.name
            assert symbol.description.strip() and symbol.group.strip()
            assert symbol.name.isupper() or symbol.name.replace("_", "").isalnum()
        for family in spec.families:
            assert family.description.strip() and family.pattern.startswith(family.prefix)
    assert len(seen) > 90


def test_checks_read_only_results_of_checks_that_ran_before_them() -> None:
    members = [
        (cls.name, Stage(cls.stage))
        for module_name in CHECK_MODULES
        for cls in _check_classes(module_name)
    ]
    waves = dict(zip(members, wave_numbers(members, requirements()), strict=True))
    order = list(Stage)
    for spec in check_specs():
        for needed in spec.requires:
            assert needed in check_names(), f"{spec.name} requires unknown {needed}"
            for (name, stage), wave in waves.items():
                if name != spec.name:
                    continue
                earlier = [
                    (s, w)
                    for (n, s), w in waves.items()
                    if n == needed and (order.index(s) < order.index(stage) or w < wave)
                ]
                assert earlier, f"{spec.name} at {stage} reads {needed}, which runs later"


def test_check_names_are_the_specs_and_exclude_the_doors() -> None:
    assert check_names() == {spec.name for spec in check_specs()}
    assert "helo" in check_names() and "rules" in check_names()
    assert doors.FRONT_SPEC.name not in check_names()
    assert doors.RUNNER_SPEC.name not in check_names()
    with pytest.raises(KeyError):
        spec_of("no_such_check")


def test_find_symbol_by_name_and_by_family() -> None:
    found = find_symbol("HELO_OURS")
    assert found is not None and found[0].name == "helo"
    assert isinstance(found[1], SymbolSpec) and found[1].score == 4.0
    exact = find_symbol("DNSBL_UNAVAILABLE")
    assert exact is not None and isinstance(exact[1], SymbolSpec)
    family = find_symbol("DNSBL_ZEN_SPAMHAUS")
    assert family is not None and isinstance(family[1], FamilySpec)
    assert family[0].name == "dnsbl"
    runner = find_symbol("CHECK_SPF_FAILED")
    assert runner is not None and runner[0] is doors.RUNNER_SPEC
    assert find_symbol("PREGREET") is not None
    assert find_symbol("NO_SUCH_SYMBOL") is None


SAMPLE = CheckSpec(
    name="sample",
    stages=(Stage.DATA,),
    summary="A sample.",
    symbols=(
        SymbolSpec("SAMPLE_FIXED", 1.5, "Fixed score.", "test"),
        SymbolSpec("SAMPLE_COMPUTED", None, "Computed score.", "test"),
    ),
    families=(FamilySpec("SAMPLE_LIST_", "SAMPLE_LIST_<X>", "A listing.", "test"),),
)


@pytest.mark.any_symbols
def test_add_takes_the_declared_score_and_refuses_what_is_not_declared() -> None:
    evidence = Evidence()
    SAMPLE.add(evidence, "SAMPLE_FIXED", "d")
    SAMPLE.add(evidence, "SAMPLE_COMPUTED", score=2.25)
    SAMPLE.add(evidence, "SAMPLE_LIST_FOO", score=-1.0)
    assert [(s.name, s.score, s.detail) for s in evidence.symbols] == [
        ("SAMPLE_FIXED", 1.5, "d"),
        ("SAMPLE_COMPUTED", 2.25, ""),
        ("SAMPLE_LIST_FOO", -1.0, ""),
    ]
    with pytest.raises(KeyError, match="does not declare symbol SAMPLE_OTHER"):
        SAMPLE.add(evidence, "SAMPLE_OTHER")
    with pytest.raises(KeyError, match="has a declared score"):
        SAMPLE.add(evidence, "SAMPLE_FIXED", score=3.0)
    with pytest.raises(KeyError, match="needs a computed score"):
        SAMPLE.add(evidence, "SAMPLE_COMPUTED")
    assert SAMPLE.score("SAMPLE_FIXED") == 1.5
    with pytest.raises(KeyError):
        SAMPLE.score("SAMPLE_COMPUTED")
    assert len(evidence.symbols) == 3


def test_a_spec_refuses_an_empty_description_or_a_duplicate() -> None:
    with pytest.raises(ValueError, match="no description"):
        CheckSpec("x", (Stage.DATA,), "x", (SymbolSpec("X_A", 1.0, " ", "g"),))
    with pytest.raises(ValueError, match="twice"):
        CheckSpec(
            "x",
            (Stage.DATA,),
            "x",
            (SymbolSpec("X_A", 1.0, "a", "g"), SymbolSpec("X_A", 2.0, "b", "g")),
        )


def test_runner_settings_come_from_the_spec_without_a_section() -> None:
    for spec in check_specs():
        settings = runner_settings(Config(), spec.name)
        assert (settings.timeout, settings.fail_mode) == (spec.timeout, spec.fail_mode)
        assert settings.enabled
    section = CheckSettings(timeout=2.5, fail_mode="tempfail")
    configured = Config(checks={"helo": section})
    assert runner_settings(configured, "helo") is section
    assert runner_settings(Config(), "not_a_spec").timeout == CheckSettings().timeout


def test_the_guard_refuses_an_undeclared_symbol_added_by_mailmoat_code() -> None:
    # tests/symbol_guard.py wraps Evidence.add for every test: code of a
    # mailmoat module that adds a name no spec declares fails the test.
    as_module = {"__name__": "mailmoat.checks.example", "Evidence": Evidence}
    exec("def emit(e):\n    e.add('EXAMPLE_UNDECLARED', 1.0)\n", as_module)
    with pytest.raises(AssertionError, match="undeclared symbol EXAMPLE_UNDECLARED"):
        as_module["emit"](Evidence())
    exec("def emit_declared(e):\n    e.add('HELO_OURS', 4.0)\n", as_module)
    declared = Evidence()
    as_module["emit_declared"](declared)
    assert [s.name for s in declared.symbols] == ["HELO_OURS"]
