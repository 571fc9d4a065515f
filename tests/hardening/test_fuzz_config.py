"""Fuzzing the config loader and its one validation path.

Properties (Hypothesis; budget from the profile in ``conftest.py``):

- any bytes as a config file: ``load_runtime_config`` returns a ``Config``
  or raises ``ConfigError``, nothing else;
- any TOML document over the real sections and keys, with values of any
  TOML type (NaN and infinities included): a ``Config`` or a ``ConfigError``
  whose every line names the file; a document that loads also passes
  ``config --check``'s runtime checks again unchanged.
"""

from __future__ import annotations

import tempfile
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway_harness import toml_dumps
from mailmoat.config import Config, ConfigError, load_runtime_config

DEFAULTS = Config()
KEYS: dict[str, list[str]] = {
    section.name: [item.name for item in fields(getattr(DEFAULTS, section.name))]
    for section in fields(DEFAULTS)
    if is_dataclass(getattr(DEFAULTS, section.name))
}


def load(data: bytes) -> Config | ConfigError:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "fuzz.toml"
        path.write_bytes(data)
        try:
            return load_runtime_config(path)
        except ConfigError as exc:
            assert exc.problems
            assert all(line.startswith(str(path)) for line in exc.problems), exc.problems
            return exc


@given(st.binary(max_size=500))
def test_any_bytes_load_or_raise_config_error(data: bytes) -> None:
    load(data)


scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, -1, 1, 2**31, 10**12]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["", "127.0.0.1:0", "sqlite://:memory:", "a(b", "10.0.0.0/33", "INFO"]),
)
toml_values = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    st.lists(st.lists(st.floats(allow_nan=False) | st.integers(-5, 5), max_size=3), max_size=3),
)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, dict[str, Any]]:
    sections = draw(st.lists(st.sampled_from(sorted(KEYS)), max_size=4, unique=True))
    document: dict[str, dict[str, Any]] = {}
    for name in sections:
        keys = draw(st.lists(st.sampled_from(KEYS[name]), min_size=1, max_size=3, unique=True))
        document[name] = {key: draw(toml_values) for key in keys}
    if draw(st.booleans()):
        document["scores"] = {draw(st.sampled_from(["HELO_BARE_IP", "X", "bad name"])): 1.5}
    return document


@given(documents())
def test_any_document_over_the_real_keys_loads_or_names_its_problems(
    document: dict[str, dict[str, Any]],
) -> None:
    text = toml_dumps(document)
    loaded = load(text.encode())
    if isinstance(loaded, Config):
        assert isinstance(load(text.encode()), Config)
