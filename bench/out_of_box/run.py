"""Out of the box: the shipped defaults against SpamAssassin 4 on unseen mail.

Usage (from the repository root)::

    .venv/bin/python bench/out_of_box/run.py [--corpus ../shared/corpus] [--limit N]
        [--sa-jobs 2] [--skip-sa]

What runs:

* the cross-time variant of the shipped model (``mailmoat.classify.recipe``:
  the recipe of ``make model`` on the 2002 spam and 60% of each ham set) is
  built into a temporary file;
* a private NSD on loopback is authoritative for the common top-level
  domains and answers every lookup with NXDOMAIN (other names: REFUSED),
  so no check finds network evidence and nothing leaves the machine;
* ``mailmoat scan --json`` runs once over the mail the variant never saw
  (the 2005 spam and the other 40% of each ham set), with the embedded
  defaults plus ``dns.nameserver`` on that NSD, ``classifier.model_path``
  on the variant, no pregreet delay and a temporary store;
* SpamAssassin 4 (Debian package, stock rules) scores the same messages
  with ``spamassassin -L --mbox`` (local tests only: no DNS, no network)
  and a private site config (the package's ``.pre`` and ``.cf`` files, then
  ``use_bayes 0``, ``use_auto_whitelist 0``), its threshold 5. SpamAssassin
  reads one mbox per process (``--sa-jobs`` processes in parallel, each on
  its share), so its start-up is paid once per process, as mailmoat scan's
  is: messages per CPU second compare the two fairly. (spamd is not
  installed by the Debian ``spamassassin`` package.)

Prints, per corpus set, the share of messages tagged or worse (mailmoat:
action add_header, quarantine, soft_reject or reject; SpamAssassin: score
>= 5) and messages per CPU second (CPU of the child processes, user +
system, start-up included). ``--limit N`` takes N messages of each set,
evenly spaced, for a quick run. Writes only under a temporary directory and
``bench/out/corpus`` (the unpacked corpus, shared with bench/classifier).
``--actions 5,10,15`` replaces the default add_header, quarantine and
reject thresholds (to try planned defaults before they are embedded).
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from mailmoat.classify.corpus import DEFAULT_SETS, find_corpus, unpack  # noqa: E402
from mailmoat.classify.persist import save_file  # noqa: E402
from mailmoat.classify.recipe import (  # noqa: E402
    build_model,
    cross_time,
    cross_time_heldout,
    load_messages,
)
from servers import Nsd  # noqa: E402

OUT = ROOT / "bench" / "out"
TAGGED = frozenset({"add_header", "quarantine", "soft_reject", "reject"})
TLDS = "com net org edu gov mil int de uk us info biz ca au fr jp nl ru it es br ch se cn kr tw"
SA_THRESHOLD = 5.0
SA_LOCAL_CF = """\
use_bayes 0
use_auto_whitelist 0
report_safe 0
clear_headers
add_header all Score _SCORE_
"""
MAILMOAT_CONFIG = """\
[dns]
nameserver = "127.0.0.1:{port}"
timeout = 2.0

[classifier]
model_path = "{model}"

[pregreet]
delay = 0.0

[store]
url = "sqlite:///{store}"
"""


@dataclass(frozen=True)
class Item:
    set_name: str
    is_spam: bool
    path: Path


def child_cpu() -> float:
    """CPU seconds (user + system) of finished child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def heldout_items(corpus: Path, limit: int) -> list[Item]:
    """The messages the cross-time variant never trains on, by set; with
    ``limit``, that many of each set, evenly spaced."""
    items: list[Item] = []
    for is_spam, path in unpack(corpus, OUT / "corpus", DEFAULT_SETS):
        set_name = path.relative_to(OUT / "corpus").parts[0]
        if cross_time_heldout(set_name, path.name):
            items.append(Item(set_name, is_spam, path))
    if not limit:
        return items
    chosen: list[Item] = []
    for set_name, _ in DEFAULT_SETS:
        members = [item for item in items if item.set_name == set_name]
        step = max(1, len(members) // limit) if members else 1
        chosen += members[::step][:limit]
    return chosen


def run_mailmoat(
    items: list[Item], tmp: Path, port: int, model: Path, thresholds: str
) -> tuple[list[str], float]:
    """The action mailmoat scan takes on each item, and its CPU seconds;
    ``thresholds`` ("add_header,quarantine,reject", or "") replaces the
    default action thresholds."""
    config = tmp / "mailmoat.toml"
    text = MAILMOAT_CONFIG.format(port=port, model=model, store=tmp / "store.db")
    if thresholds:
        add_header, quarantine, reject = (float(v) for v in thresholds.split(","))
        text += f"\n[actions]\nadd_header = {add_header}\nquarantine = {quarantine}\n"
        text += f"reject = {reject}\n"
    config.write_text(text)
    command = [sys.executable, "-m", "mailmoat", "scan", "--json", "--config", str(config)]
    started = child_cpu()
    done = subprocess.run(
        command + [str(item.path) for item in items], capture_output=True, text=True, check=False
    )
    elapsed = child_cpu() - started
    if done.returncode != 0:
        raise RuntimeError(f"mailmoat scan failed ({done.returncode}):\n{done.stderr[-2000:]}")
    actions = {}
    for line in done.stdout.splitlines():
        row = json.loads(line)
        actions[row["file"]] = row["action"]
    return [actions[str(item.path)] for item in items], elapsed


def sa_site(tmp: Path) -> Path:
    """A site config: the package's own files, Bayes and AWL off."""
    site = tmp / "sa-site"
    site.mkdir()
    for source in Path("/etc/spamassassin").iterdir():
        if source.suffix in (".pre", ".cf") and source.name != "local.cf":
            shutil.copy(source, site / source.name)
    (site / "local.cf").write_text(SA_LOCAL_CF)
    return site


def write_mbox(items: list[tuple[int, Item]], path: Path) -> None:
    with path.open("wb") as handle:
        for number, item in items:
            raw = item.path.read_bytes()
            if raw.startswith(b"From "):
                raw = raw.split(b"\n", 1)[1] if b"\n" in raw else b""
            raw = re.sub(rb"(?m)^(>*From )", rb">\1", raw.replace(b"\r\n", b"\n"))
            # mbox mode does not keep the order: each message carries its number.
            handle.write(b"From bench@localhost Thu Jan  1 00:00:00 1970\n")
            handle.write(b"X-Bench-Id: %d\n" % number + raw + b"\n")


def run_spamassassin(items: list[Item], tmp: Path, jobs: int) -> tuple[list[float], float]:
    """SpamAssassin's score of each item, and its CPU seconds."""
    site = sa_site(tmp)
    home = tmp / "sa-home"
    home.mkdir()
    numbered = list(enumerate(items))
    shares = [numbered[n::jobs] for n in range(jobs)]
    mboxes = []
    for n, share in enumerate(shares):
        mboxes.append(tmp / f"sa-{n}.mbox")
        write_mbox(share, mboxes[-1])
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C"}

    def one(mbox: Path) -> bytes:
        command = ["spamassassin", "-L", "--siteconfigpath", str(site), "--mbox", str(mbox)]
        command += ["-p", str(home / "user_prefs")]
        return subprocess.run(command, capture_output=True, check=True, env=env).stdout

    started = child_cpu()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        outputs = list(pool.map(one, mboxes))
    elapsed = child_cpu() - started
    scores: dict[int, float] = {}
    for output in outputs:
        for message in re.split(rb"\nFrom bench@localhost ", output):
            head = message.split(b"\n\n", 1)[0]
            tag = re.search(rb"(?m)^X-Bench-Id: (\d+)", head)
            score = re.search(rb"(?m)^X-Spam-Score: (-?[0-9.]+)", head)
            if tag and score:
                scores[int(tag.group(1))] = float(score.group(1))
    if len(scores) != len(items):
        raise RuntimeError(f"spamassassin scored {len(scores)} of {len(items)}")
    return [scores[n] for n in range(len(items))], elapsed


def table(
    items: list[Item],
    actions: list[str],
    mm_cpu: float,
    sa_scores: list[float] | None,
    sa_cpu: float,
) -> str:
    lines = [
        "| set | label | messages | mailmoat tagged or worse | SpamAssassin >= 5 |",
        "|---|---|---:|---:|---:|",
    ]
    for set_name, is_spam in DEFAULT_SETS:
        picked = [n for n, item in enumerate(items) if item.set_name == set_name]
        if not picked:
            continue
        mm = sum(actions[n] in TAGGED for n in picked)
        cells = [set_name, "spam" if is_spam else "ham", str(len(picked))]
        cells.append(f"{100 * mm / len(picked):.1f}% ({mm})")
        if sa_scores is None:
            cells.append("-")
        else:
            sa = sum(sa_scores[n] >= SA_THRESHOLD for n in picked)
            cells.append(f"{100 * sa / len(picked):.1f}% ({sa})")
        lines.append("| " + " | ".join(cells) + " |")
    sa_rate = f"{len(items) / sa_cpu:.1f}" if sa_scores is not None and sa_cpu > 0 else "-"
    mm_rate = f"{len(items) / mm_cpu:.1f}" if mm_cpu > 0 else "-"
    lines.append(f"| messages per CPU second | | {len(items)} | {mm_rate} | {sa_rate} |")
    return "\n".join(lines)


def action_counts(items: list[Item], actions: list[str]) -> str:
    """mailmoat's actions by set (how the tagged share splits up)."""
    lines = []
    for set_name, _ in DEFAULT_SETS:
        counts: dict[str, int] = {}
        for item, action in zip(items, actions, strict=True):
            if item.set_name == set_name:
                counts[action] = counts.get(action, 0) + 1
        if counts:
            listed = ", ".join(f"{a} {n}" for a, n in sorted(counts.items()))
            lines.append(f"{set_name}: {listed}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--corpus", help="corpus directory (default: find it)")
    parser.add_argument("--limit", type=int, default=0, help="messages per set (0: all)")
    parser.add_argument("--sa-jobs", type=int, default=2, help="SpamAssassin processes (2)")
    parser.add_argument("--skip-sa", action="store_true", help="mailmoat only")
    parser.add_argument(
        "--actions",
        default="",
        metavar="ADD,QUARANTINE,REJECT",
        help="action thresholds in place of the defaults (e.g. 5,10,15)",
    )
    args = parser.parse_args()
    corpus = Path(args.corpus) if args.corpus else find_corpus()
    if corpus is None:
        print("out_of_box: corpus not found", file=sys.stderr)
        return 2
    items = heldout_items(corpus, args.limit)
    with tempfile.TemporaryDirectory(prefix="mm-oob-") as name:
        tmp = Path(name)
        model = tmp / "variant.bin"
        save_file(build_model(load_messages(corpus, cross_time)), model)
        zones = {tld: "nic IN A 192.0.2.1\n" for tld in TLDS.split()}
        with Nsd(zones) as nsd:
            actions, mm_cpu = run_mailmoat(items, tmp, nsd.port, model, args.actions)
        sa_scores: list[float] | None = None
        sa_cpu = 0.0
        if not args.skip_sa:
            sa_scores, sa_cpu = run_spamassassin(items, tmp, max(1, args.sa_jobs))
    print(table(items, actions, mm_cpu, sa_scores, sa_cpu))
    print()
    print(action_counts(items, actions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
