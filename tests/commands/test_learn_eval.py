"""``mailmoat learn`` and ``mailmoat eval`` end to end on synthetic mail."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from mailmoat.classify import Classifier
from mailmoat.classify.evaluate import read_index
from mailmoat.classify.model import Model
from mailmoat.classify.testing import synthetic_corpus
from mailmoat.cli import main
from mailmoat.message import parse_message

KEYS = {
    "one_minus_auc_pct",
    "lam_pct",
    "fpr_at_99_recall",
    "recall_at_0_1_fpr",
    "msgs_per_sec",
    "n_ham",
    "n_spam",
    "n_feedback",
    "n_autolearned",
}


def write_index(
    tmp_path: Path, n: int = 120, feedback: Callable[[int], bool] = lambda number: True
) -> Path:
    """An index of synthetic mail; labels in lower case where ``feedback(number)``."""
    folder = tmp_path / "mail"
    folder.mkdir()
    lines = []
    for number, (is_spam, raw) in enumerate(synthetic_corpus(n)):
        (folder / f"{number:04d}").write_bytes(raw)
        label = "spam" if is_spam else "ham"
        lines.append(f"{label if feedback(number) else label.title()} mail/{number:04d}")
    index = tmp_path / "index"
    index.write_text("# synthetic\n" + "\n".join(lines) + "\n")
    return index


@pytest.mark.parametrize("mode", ["split", "online"])
def test_eval_json_summary_and_outputs(
    tmp_path: Path, mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    index = write_index(tmp_path)
    out = tmp_path / "out"
    status = main(["eval", str(index), "--mode", mode, "--out", str(out), "--json"])
    assert status == 0
    lines = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(lines[-1])
    assert set(summary) == KEYS
    expected_scored = 60 if mode == "split" else 120
    assert summary["n_ham"] + summary["n_spam"] == expected_scored
    assert summary["one_minus_auc_pct"] < 5.0
    assert summary["msgs_per_sec"] > 0
    results = (out / "results.txt").read_text().splitlines()
    assert len(results) == expected_scored
    path, truth, judged, margin, probability = results[0].split("\t")
    assert truth in ("spam", "ham") and judged in ("spam", "ham")
    assert (
        0.0 <= float(probability) <= 1.0 and Path(path).exists() and float(margin) == float(margin)
    )
    assert (out / "roc.png").read_bytes().startswith(b"\x89PNG")
    assert any(line.startswith("(1-AUC)%") for line in lines)


def test_eval_train_fraction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    index = write_index(tmp_path, 40)
    argv = ["eval", str(index), "--train-fraction", "0.75", "--out", str(tmp_path / "o"), "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["n_ham"] + summary["n_spam"] == 10


@pytest.mark.parametrize(
    ("label", "content"),
    [("bad label", "junk mail/0001\n"), ("no path", "spam\n")],
)
def test_eval_bad_index(
    tmp_path: Path, label: str, content: str, capsys: pytest.CaptureFixture[str]
) -> None:
    index = tmp_path / "index"
    index.write_text(content)
    assert main(["eval", str(index), "--out", str(tmp_path / "o")]) == 2, label
    assert "index:1" in capsys.readouterr().err


def test_eval_missing_index(tmp_path: Path) -> None:
    assert main(["eval", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2


def test_learn_from_dir_mbox_and_maildir(tmp_path: Path) -> None:
    mail = synthetic_corpus(60, seed=11)
    spam = [raw for is_spam, raw in mail if is_spam]
    ham = [raw for is_spam, raw in mail if not is_spam]
    spam_dir = tmp_path / "spam"
    spam_dir.mkdir()
    for number, raw in enumerate(spam):
        (spam_dir / f"{number}.eml").write_bytes(raw)
    mbox = tmp_path / "ham.mbox"
    mbox.write_bytes(
        b"".join(b"From x@y Mon Jan  1 00:00:00 2001\n" + raw + b"\n" for raw in ham[:20])
    )
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for number, raw in enumerate(ham[20:]):
        (maildir / "cur" / f"{number}:2,S").write_bytes(raw)
    model = tmp_path / "model.bin"
    probe = parse_message(spam[0])
    before = Classifier.load().score(probe)
    argv = ["learn", "--spam", str(spam_dir), "--ham", str(mbox), str(maildir)]
    assert main([*argv, "--model", str(model), "--force"]) == 0
    after = Classifier.load(model).score(probe)
    assert after > before
    assert Classifier.load(model).model.n_learned > Classifier.load().model.n_learned


def test_learn_without_a_model_file_learns_into_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the default store is var/mailmoat.db, relative
    (tmp_path / "m").write_bytes(synthetic_corpus(1)[0][1])
    assert main(["learn", "--spam", str(tmp_path / "m"), "--force"]) == 0
    assert "model version 1 in the store's classifier_model" in capsys.readouterr().out
    assert (tmp_path / "var" / "mailmoat.db").exists()
    assert main(["learn", "--spam", str(tmp_path / "nope"), "--model", str(tmp_path / "x")]) == 2
    assert "no such file or directory" in capsys.readouterr().err
    assert main(["learn"]) == 2
    assert "--spam, --ham or --forget" in capsys.readouterr().err


def test_learn_refuses_a_broken_model_file(tmp_path: Path) -> None:
    (tmp_path / "m").write_bytes(synthetic_corpus(1)[0][1])
    (tmp_path / "model.bin").write_bytes(b"junk")
    argv = ["learn", "--spam", str(tmp_path / "m"), "--model", str(tmp_path / "model.bin")]
    assert main(argv) == 2


def record_learning(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """The label of every ``Model.learn`` call from now on, in order."""
    calls: list[bool] = []
    original = Model.learn

    def learn(self: Model, indices: object, is_spam: bool, *, force: bool = False) -> bool:
        calls.append(is_spam)
        return original(self, indices, is_spam, force=force)  # type: ignore[arg-type]

    monkeypatch.setattr(Model, "learn", learn)
    return calls


def eval_json(index: Path, out: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> dict:
    assert main(["eval", str(index), "--out", str(out), "--json", *args]) == 0
    return dict(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))


def test_trec_feedback_learns_only_lower_case_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    index = write_index(tmp_path, 120, feedback=lambda number: number % 4 != 1)
    entries = read_index(index)
    expected = [e.is_spam for e in entries if e.feedback]
    assert 0 < len(expected) < len(entries) and sum(expected) and not all(expected)
    calls = record_learning(monkeypatch)
    out = tmp_path / "out"
    summary = eval_json(index, out, "--feedback", "trec", "--mode", "online", capsys=capsys)
    assert calls == expected  # the lower-case labels, in index order, and nothing else
    assert summary["n_feedback"] == len(expected) and summary["n_autolearned"] == 0
    assert summary["n_ham"] + summary["n_spam"] == 120  # every message is scored


def test_trec_feedback_without_lower_case_labels_never_learns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    index = write_index(tmp_path, 60, feedback=lambda number: False)
    calls = record_learning(monkeypatch)
    out = tmp_path / "out"
    summary = eval_json(index, out, "--feedback", "trec", "--mode", "online", capsys=capsys)
    assert calls == [] and summary["n_feedback"] == 0
    margins = [
        float(line.split("\t")[3]) for line in (out / "results.txt").read_text().splitlines()
    ]
    assert len(margins) == 60 and set(margins) == {0.0}  # a fresh model that never learned


def test_immediate_feedback_learns_every_label_whatever_its_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    index = write_index(tmp_path, 60, feedback=lambda number: number % 2 == 0)
    calls = record_learning(monkeypatch)
    summary = eval_json(index, tmp_path / "out", "--mode", "online", capsys=capsys)
    assert calls == [e.is_spam for e in read_index(index)] and summary["n_feedback"] == 60


def test_autolearn_during_eval_uses_the_gateway_guard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    index = write_index(tmp_path, 60, feedback=lambda number: False)
    rules = tmp_path / "rules.toml"
    rules.write_text(
        "[rules.TEST_DRUGS]\nbody = '(?i)\\b(?:viagra|pills)\\b'\nscore = 13.0\n"
        'description = "strong test rule"\n'
    )
    # A stored message has no connection or SPF evidence: the test asks for
    # none from the sender, so the rule alone decides.
    config = tmp_path / "eval.toml"
    config.write_text(
        f'[rules]\nfiles = ["{rules}"]\n[classifier]\nautolearn_min_sender_points = 0.0\n'
        f"autolearn_min_content_points = 3.0\nhash_bits = 16\n"
    )
    with_rule = [
        e.is_spam
        for e in read_index(index)
        if any(w in e.path.read_text() for w in ("viagra", "pills", "Viagra"))
    ]
    assert with_rule and all(with_rule)
    calls = record_learning(monkeypatch)
    args = ["--feedback", "trec", "--mode", "online", "--config", str(config)]
    summary = eval_json(index, tmp_path / "out", *args, "--autolearn", capsys=capsys)
    assert summary["n_feedback"] == 0
    assert calls == [True] * len(with_rule) and summary["n_autolearned"] == len(with_rule)
    calls.clear()
    summary = eval_json(index, tmp_path / "out2", *args, capsys=capsys)
    assert calls == [] and summary["n_autolearned"] == 0
