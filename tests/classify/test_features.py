"""Feature extraction: deterministic, bounded, line-end independent."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from mailmoat.classify import FeatureConfig, extract
from mailmoat.message import parse_message

RAW = (
    b"From: Deals <promo@deals.example>\nSubject: Cheap pills\nX-Mailer: Blaster 2\n"
    b"Content-Type: text/html\n\n<p>Buy <b>cheap</b> pills at "
    b'<a href="http://buy.deals.example/now?id=1">here</a></p>\n'
)


def test_indices_sorted_distinct_and_in_range() -> None:
    config = FeatureConfig(hash_bits=12)
    indices = extract(parse_message(RAW), config)
    assert indices.dtype == np.uint32
    assert len(indices) > 50
    assert np.all(np.diff(indices.astype(np.int64)) > 0)
    assert int(indices.max()) < 2**12


def test_same_in_another_process() -> None:
    # CRC-based hashing: no dependence on PYTHONHASHSEED.
    code = (
        "import sys; from mailmoat.classify import FeatureConfig, extract;"
        "from mailmoat.message import parse_message;"
        "print(extract(parse_message(sys.stdin.buffer.read()), FeatureConfig()).sum())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=RAW,
        capture_output=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
    ).stdout
    assert int(out) == int(extract(parse_message(RAW), FeatureConfig()).sum())


def test_crlf_and_lf_copies_match() -> None:
    lf = extract(parse_message(RAW), FeatureConfig())
    crlf = extract(parse_message(RAW.replace(b"\n", b"\r\n")), FeatureConfig())
    assert np.array_equal(lf, crlf)


def test_families_change_features() -> None:
    base = set(extract(parse_message(RAW), FeatureConfig()).tolist())
    other_header = RAW.replace(b"X-Mailer: Blaster 2", b"X-Mailer: Mutt 1.4")
    other_url = RAW.replace(b"buy.deals.example", b"git.example.org")
    for changed in (other_header, other_url):
        assert set(extract(parse_message(changed), FeatureConfig()).tolist()) != base


def test_empty_message_has_few_features() -> None:
    assert 0 < len(extract(parse_message(b""), FeatureConfig())) < 20


def test_config_roundtrip_ignores_unknown_keys() -> None:
    config = FeatureConfig(hash_bits=16, osb_window=3)
    assert FeatureConfig.from_dict({**config.to_dict(), "future": 1}) == config
