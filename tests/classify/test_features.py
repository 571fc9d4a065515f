"""Feature extraction: deterministic, bounded, line-end independent."""

from __future__ import annotations

import math
import random
import re
import subprocess
import sys
import zlib

import numpy as np
import pytest

from mailmoat.classify import FeatureConfig, extract, features, key_memo
from mailmoat.classify.header_shape import CONTENT_FIELDS, header_shape_keys
from mailmoat.classify.testing import synthetic_corpus
from mailmoat.message import ParsedMessage, parse_message

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


def test_model_saved_before_feature_sets_keeps_the_first_set() -> None:
    old = {key: value for key, value in FeatureConfig().to_dict().items() if key != "feature_set"}
    assert FeatureConfig.from_dict(old).feature_set == 1
    assert FeatureConfig().feature_set == 2


# The definition of the features, written plainly (one regex pass, one key
# string per feature, no caches): extract() must give the very same arrays,
# or the shipped model would need retraining.

_REF_WORD = re.compile(r"\w+(?:[.'@+-]\w+)*[!%]?")
_REF_HEADER_WORD = re.compile(r"[$]?\w+(?:[.@-]\w+)*[!%]?")
_REF_TAG = re.compile(r"<(/?[a-z][a-z0-9]{0,15})([^>]{0,300})")
_REF_ATTR = re.compile(r"([a-z-]{1,20})\s*=")
_REF_PATH_WORD = re.compile(r"[A-Za-z0-9]{2,30}")
_REF_SKIP = {"date", "content-length", "lines", "status", "x-uid", "x-status"}
_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xC2B2AE3D27D4EB4F)


def _ref_hash(key: str) -> int:
    data = key.encode("utf-8", "surrogatepass")
    return zlib.crc32(data) | (zlib.crc32(data, 0x5BD1E995) << 32)


def _ref_bucket(value: int) -> int:
    return 0 if value <= 0 else 1 + int(math.log2(value))


def _ref_header_keys(message: ParsedMessage, config: FeatureConfig) -> list[str]:
    """Feature set 2: the first value of each content field tokenised, and
    the shape keys (``header_shape`` is plain code, its own definition)."""
    keys: list[str] = []
    seen = set()
    for name, value in message.headers:
        field = name.lower()
        if field in CONTENT_FIELDS and field not in seen:
            seen.add(field)
            tokens = _REF_HEADER_WORD.findall(value.lower())[: config.max_header_words]
            keys += [f"{field}:{token}" for token in tokens]
            keys += [f"{field}:@{t.rpartition('@')[2]}" for t in tokens if "@" in t]
    return keys + header_shape_keys(message)


def _ref_keys(message: ParsedMessage, config: FeatureConfig) -> list[str]:
    if config.feature_set >= 2:
        return _ref_header_keys(message, config) + _ref_content_keys(message, config)
    keys: list[str] = []
    names = []
    received = 0
    for name, value in message.headers:
        field = name.lower()
        names.append(field)
        keys.append("hn:" + field)
        if field in _REF_SKIP or field.startswith("x-spam"):
            continue
        if field == "received":
            received += 1
            if received > config.max_received:
                continue
        tokens = _REF_HEADER_WORD.findall(value.lower())[: config.max_header_words]
        keys += [f"{field}:{token}" for token in tokens]
        keys += [f"{field}:@{t.rpartition('@')[2]}" for t in tokens if "@" in t]
    keys += ["ho:" + ",".join(names[:6]), f"hcount:{_ref_bucket(len(names))}"]
    return keys + _ref_content_keys(message, config)


def _ref_content_keys(message: ParsedMessage, config: FeatureConfig) -> list[str]:
    keys: list[str] = []
    for url in message.urls[: config.max_urls]:
        host, _, path = url.partition("://")[2].partition("/")
        labels = host.split(".")
        keys.append("uh:" + host)
        keys += ["ud:" + ".".join(labels[-depth:]) for depth in range(2, min(len(labels), 4))]
        keys += ["u:ip"] if labels[-1].isdigit() else []
        keys += ["up:" + word.lower() for word in _REF_PATH_WORD.findall(path)[:10]]
    keys.append(f"urls:{_ref_bucket(len(message.urls))}")
    if message.html:
        for tag, attrs in list(dict.fromkeys(_REF_TAG.findall(message.html.lower())))[
            : config.max_tags
        ]:
            keys.append("tag:" + tag)
            keys += [f"ta:{tag}:{attr}" for attr in _REF_ATTR.findall(attrs)[:6]]
        keys.append(f"hratio:{int(len(message.html_text) / max(len(message.html), 1) * 10)}")
        keys.append("html:" + ("only" if not message.text else "alt"))
    for attachment in message.attachments:
        ext = attachment.filename.rpartition(".")[2].lower()[:8] if attachment.filename else "-"
        keys += ["att:" + attachment.content_type, "ext:" + ext]
    keys += ["pt:" + part_type for part_type in message.part_types[:20]]
    keys += ["cs:" + charset for charset in message.charsets[:10]]
    keys += ["df:" + defect.partition(":")[0] for defect in message.defects[:10]]
    keys += [f"len:{_ref_bucket(len(message.raw))}", f"parts:{_ref_bucket(message.parts_count)}"]
    return keys


def reference_extract(message: ParsedMessage, config: FeatureConfig) -> np.ndarray:
    keys = _ref_keys(message, config)
    text = f"{message.subject}\n{message.text}\n{message.html_text}"
    text = text[: config.max_body_words * 12].lower()
    words = _REF_WORD.findall(text)[: config.max_body_words]
    hashes: np.ndarray = np.array([_ref_hash(key) for key in keys + words], dtype=np.uint64)
    word_hashes = hashes[len(keys) :]
    parts: list[np.ndarray] = [hashes]
    for distance in range(1, min(config.osb_window + 1, len(words))):
        left, right = word_hashes[:-distance], word_hashes[distance:]
        parts.append(left * _M1 + right * _M2 + np.uint64(distance))
    if config.ngram_bytes:
        raw = message.raw if config.feature_set < 2 else message.raw[message.body_offset :]
        head = raw[: config.ngram_bytes * 2].replace(b"\r\n", b"\n")
        head = head[: config.ngram_bytes]
        if len(head) >= 4:
            b = np.frombuffer(head, dtype=np.uint8).astype(np.uint64)
            grams = (b[:-3] << 24) | (b[1:-2] << 16) | (b[2:-1] << 8) | b[3:]
            parts.append((grams + np.uint64(0x51ED27)) * _M2)
    merged = np.concatenate(parts)
    merged ^= merged >> np.uint64(29)
    return np.unique((merged & np.uint64((1 << config.hash_bits) - 1)).astype(np.uint32))


# Characters that stress the tokenisers: word punctuation in every place,
# "$", "_", white space and separators, and non-ASCII letters, digits,
# spaces and a lone surrogate (as undecodable input leaves them).
_ALPHABET = list("aZq_9.'@+-!%$ \t\n,;:()<>\"=/&#") + list("éßİKΣ٣²ﬁ\xa0\u2028\u3000\udc80")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _noise(rng: random.Random, size: int, alphabet: list[str] = _ALPHABET) -> str:
    return "".join(
        rng.choice(alphabet) if rng.random() < 0.4 else rng.choice(_LETTERS) for _ in range(size)
    )


def _random_message(rng: random.Random) -> bytes:
    names = ["From", "To", "Subject", "Received", "X-Spam-Flag", "Date", "Message-ID"]
    names += ["X-Custom-Header", "Reply-To", "REFERENCES", "Cc"]
    one_line = [c for c in _ALPHABET if not c.isspace()] + [" "]
    headers = [f"{rng.choice(names)}: {_noise(rng, rng.randrange(60), one_line)}" for _ in range(8)]
    headers.append(f"From: a@b.example, {_noise(rng, 10, one_line)}@x.example $cheap $$9")
    if rng.random() < 0.5:
        headers.append("Content-Type: text/html; charset=utf-8")
        attrs = " ".join(
            f"{rng.choice(['href', 'data-' + 'x' * rng.randrange(30), 'st y'])}"
            f"{rng.choice(['=', ' = ', ''])}'{_noise(rng, 8)}'"
            for _ in range(rng.randrange(9))
        )
        body = (
            f"<p {attrs}>{_noise(rng, 200)}<a href=http://h{rng.randrange(9)}.example/a/b>x</a>"
            f"<Table{'z' * rng.randrange(20)} {attrs}><br/>{_noise(rng, 100)}</p>"
        )
    else:
        body = _noise(rng, rng.randrange(1200)) + " http://10.0.0.1/p?q=1 "
    raw = ("\n".join(headers) + "\n\n" + body + "\n").encode("utf-8", "surrogatepass")
    raw = raw.replace(b"\n", rng.choice([b"\n", b"\r\n"]))
    return raw.replace(b"e", b"e\r", 3) if rng.random() < 0.2 else raw  # a few lone CRs


# Bodies with one kind of trouble each: "_" the only punctuation, trailing
# and doubled punctuation, "!" inside words, long attribute names.
EDGES = [
    b"Subject: snake_case words only\n\nfoo_bar baz qux_",
    b"Subject: Stop. Now!! e-mail don't 3.5%% a--b a.-b x!y\n\n...and -- it. 100%!",
    b"Subject: x\r\nContent-Type: text/html\r\n\r\n<td aaaaaaaaaaaaaaaaaaaaaaaaa=1 b =2 c= 3>"
    + b"<font face=arial size =2 color= red style=x data-q=1 title=t>hi</font>",
    "Subject: Ünïcödé ΣΊΣΥΦΟΣ mixed_case\n\nstraße ﬁnal ٣٤ K\u00a0k".encode(),
]
CONFIGS = [
    FeatureConfig(),
    FeatureConfig(feature_set=1),
    FeatureConfig(hash_bits=12, osb_window=1, max_header_words=2, max_received=0, feature_set=1),
    FeatureConfig(hash_bits=12, osb_window=1, max_header_words=2),
    FeatureConfig(osb_window=7, max_body_words=30, max_tags=2, max_urls=1, ngram_bytes=5),
    FeatureConfig(hash_bits=32, osb_window=0, ngram_bytes=0, feature_set=1),
]


def test_same_as_the_definition() -> None:
    rng = random.Random(20030228)
    messages = [raw for _, raw in synthetic_corpus(20)] + [RAW, b"", b"\r\n\r\n", b"x", *EDGES]
    messages += [_random_message(rng) for _ in range(150)]
    for raw in messages:
        message = parse_message(raw)
        for config in CONFIGS:
            expected = reference_extract(message, config)
            got = extract(message, config)
            assert got.dtype == np.uint32
            assert np.array_equal(got, expected), (raw[:80], config)


def test_same_after_the_cache_starts_over(monkeypatch: pytest.MonkeyPatch) -> None:
    # A tiny cache starts over many times within one message: the memos in
    # use then go on unshared, and the results stay the same.
    rng = random.Random(5)
    messages = [parse_message(_random_message(rng)) for _ in range(20)]
    monkeypatch.setattr(key_memo, "CACHE_MAX", 7)
    for message in messages:
        for config in (FeatureConfig(), FeatureConfig(feature_set=1)):
            assert np.array_equal(extract(message, config), reference_extract(message, config))


def test_body_words_are_the_regex_words() -> None:
    # The tokeniser splits bytes and keeps the regex for the few chunks
    # that need it (non-ASCII ones decoded): the same words in the same
    # order as one regex pass, on text of every mix of ASCII and not.
    rng = random.Random(1999)
    texts = [
        "",
        " ",
        "x",
        "É",
        "a\xa0b",
        "ab\u3000cd.e",
        "\udc80x y.",
        *(e.decode() for e in EDGES),
    ]
    for size in (5, 40, 400, 3000):
        texts += [_noise(rng, size) for _ in range(30)]
        texts += [_noise(rng, size, list("aZ9.'@+-!% \n")) for _ in range(10)]
    for text in texts:
        for limit in (0, 1, 7, 1500):
            words = _REF_WORD.findall(text.lower())[:limit]
            got: list[int] = []
            features._word_hashes(text, limit, got)
            assert got == [_ref_hash(word) for word in words], (text[:60], limit)
