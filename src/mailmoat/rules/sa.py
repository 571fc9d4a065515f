"""SpamAssassin rules: directives (from ``cf``) turned into ``Rule`` objects.

Contract: ``load_sa(paths)`` reads ``(path, admin)`` pairs in SpamAssassin's
order and returns an ``SaLoad``: the rules by name (a later definition
replaces an earlier one, a later ``score`` too), what was skipped by
reason, the problems with ``file:line``, and counts per file. Supported:
``header`` (``Name``, ``Name:raw|addr|name``, ``ALL``, ``ToCc``,
``MESSAGEID``, ``EnvelopeFrom``, ``exists:Name``, ``=~``/``!~``,
``[if-unset: ...]``), ``body``, ``rawbody``, ``uri``, ``full``, ``meta``
(boolean and arithmetic), ``describe``, ``score`` (score set 0: the first
of four values; no score line: 1.0, ``T_`` rules 0.01, ``__`` helpers 0),
``tflags`` (``multiple``, ``maxhits=N`` and ``nosubject`` change matching,
``net`` rules are skipped since the set without network tests gives them
0; every flag is kept on the rule), ``priority``, and the ReplaceTags
plugin (``replace_tag``/``replace_pre``/``replace_inter``/``replace_post``,
``replace_rules``). Skipped and counted: ``eval:`` tests (Perl code),
untranslatable regexes (by reason), rules scored 0 (disabled, as in
SpamAssassin), network tests, ``mimeheader``, unsupported pseudo-headers,
metas that need a skipped rule where its absence could make them hit (a
skipped rule a meta only needs positively counts as "no hit").

Failure mode: a line that cannot be read as its directive is a
``Problem`` (reason "syntax error"), a directive this engine does not know
one with reason "unknown directive"; both are skipped. Nothing raises.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace

from mailmoat.rules import evals, satexts
from mailmoat.rules.cf import CfRead, Directive, Problem, read_cf
from mailmoat.rules.meta import evaluate, names_in, parse_meta, polarity, replace_names
from mailmoat.rules.model import Rule, RuleError
from mailmoat.rules.perlre import Untranslatable, compile_perl, split_delimited
from mailmoat.rules.prefilter import leading_literals, required_literals

RULE_KINDS = ("header", "body", "rawbody", "uri", "full", "meta")
MAX_COUNT = 100  # matches counted for ``tflags multiple`` without maxhits
_NAME = re.compile(r"^[A-Za-z0-9_]{1,128}$")
_HEADER_TEST = re.compile(r"^([^\s=!]+)\s*([=!]~)\s*(.+)$")
_IF_UNSET = re.compile(r"\s*\[if-unset:\s?(.*)\]\s*$")
_IGNORED = frozenset(
    [
        "add_header",
        "adsp_override",
        "askdns",
        "asn_lookup",
        "clear_headers",
        "envelope_sender_header",
        "fns_check",
        "fns_ignore_dkim",
        "fns_ignore_headers",
        "freemail_domains",
        "freemail_whitelist",
        "freemail_welcomelist",
        "lang",
        "loadplugin",
        "tryplugin",
        "lock_method",
        "normalize_charset",
        "ok_languages",
        "ok_locales",
        "originating_ip_headers",
        "redirector_pattern",
        "report",
        "report_contact",
        "report_safe",
        "require_version",
        "required_score",
        "reuse",
        "rewrite_header",
        "test",
        "trusted_networks",
        "internal_networks",
        "msa_networks",
        "unsafe_report",
        "url_shortener",
        "url_shortener_get",
        "use_bayes",
        "use_auto_welcomelist",
        "use_auto_whitelist",
        "use_txrep",
        "skip_rbl_checks",
        "dns_available",
        "dns_server",
        "dns_block_rule",
        "dns_local_ports_avoid",
        "dns_local_ports_permit",
        "rbl_timeout",
        "shortcircuit",
        "fold_headers",
        "remove_header",
        "always_trust_envelope_sender",
        "urirhsbl",
        "urirhssub",
        "uridnsbl",
        "uridnssub",
        "enlist_addrlist",
        "enlist_uri_host",
        "delist_uri_host",
        "blacklist_from",
        "whitelist_from",
        "blocklist_from",
        "welcomelist_from",
        "unblacklist_from",
        "unwhitelist_from",
        "report_charset",
        "allow_user_rules",
        "user_awl_sql_table",
    ]
)
_IGNORED_PREFIXES = (
    "bayes_", "def_whitelist", "def_welcomelist", "whitelist_", "welcomelist_",
    "blacklist_", "blocklist_", "util_rb_", "uridnsbl_", "clear_", "dkim_", "spf_",
    "dcc_", "pyzor_", "razor_", "txrep_", "auto_whitelist", "auto_welcomelist",
    "hashbl_", "dmarc_", "asn_", "textcat_", "pdfinfo_", "olevba_", "extracttext_",
    "report_", "score_", "dns_", "geodb_", "uri_", "hashcash_", "spamcop_", "tflags_",
)  # fmt: skip


@dataclass
class SaLoad:
    rules: dict[str, Rule] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    per_file: dict[str, Counter[str]] = field(default_factory=dict)
    ignored: Counter[str] = field(default_factory=Counter)  # directives read and not used
    files: list[str] = field(default_factory=list)

    def skip(self, where: str, reason: str) -> None:
        self.skipped[reason] += 1
        self.per_file.setdefault(where.rpartition(":")[0], Counter())[reason] += 1

    def loaded(self, where: str) -> None:
        self.per_file.setdefault(where.rpartition(":")[0], Counter())["loaded"] += 1


@dataclass
class _Tables:
    defs: dict[str, Directive] = field(default_factory=dict)
    scores: dict[str, Directive] = field(default_factory=dict)
    describe: dict[str, str] = field(default_factory=dict)
    tflags: dict[str, list[str]] = field(default_factory=dict)
    priority: dict[str, int] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)  # kind -> name -> value
    replace: set[str] = field(default_factory=set)


def load_sa(paths: list[tuple[str, bool]]) -> SaLoad:
    read = read_cf(paths)
    result = SaLoad(problems=list(read.problems), files=read.files)
    result.skipped.update(read.inactive)
    tables = _collect(read, result)
    for name, directive in tables.defs.items():
        try:
            rule = _build(name, directive, tables)
        except _Skip as skip:
            result.skip(directive.where, skip.reason)
            if skip.problem:
                detail = f"rule {name}: {skip.detail or skip.reason}"
                result.problems.append(
                    Problem(directive.where, skip.reason, detail, directive.admin)
                )
            continue
        result.rules[name] = rule
    _resolve_metas(result, tables)
    for rule in result.rules.values():
        result.loaded(rule.source)
    return result


class _Skip(Exception):
    def __init__(self, reason: str, problem: bool = False, detail: str = "") -> None:
        super().__init__(reason)
        self.reason, self.problem, self.detail = reason, problem, detail


def _collect(read: CfRead, result: SaLoad) -> _Tables:
    tables = _Tables()
    for directive in read.directives:
        name, args = directive.name, directive.args
        words = args.split(None, 1)
        target = words[0] if words else ""
        rest = words[1].strip() if len(words) > 1 else ""
        if name in RULE_KINDS or name == "mimeheader":
            if not _NAME.match(target) or not rest:
                _problem(result, directive, "syntax error", f"{name}: needs a name and a test")
            elif name == "mimeheader":
                result.skip(directive.where, "mimeheader (MIME part headers)")
            else:
                tables.defs.pop(target, None)  # a redefinition counts where it is
                tables.defs[target] = directive
        elif name == "score":
            tables.scores[target] = directive
        elif name == "describe":
            tables.describe[target] = rest
        elif name == "tflags":
            tables.tflags[target] = rest.split()
        elif name == "priority":
            try:
                tables.priority[target] = int(rest)
            except ValueError:
                _problem(result, directive, "syntax error", "priority: not a number")
        elif name in ("replace_tag", "replace_pre", "replace_inter", "replace_post"):
            tables.tags.setdefault(name[len("replace_") :], {})[target] = rest
        elif name == "replace_rules":
            tables.replace.update(args.split())
        elif name in _IGNORED or name.startswith(_IGNORED_PREFIXES):
            result.ignored[name] += 1
        else:
            _problem(result, directive, "unknown directive", f"unknown directive {name!r}")
    return tables


def _problem(result: SaLoad, directive: Directive, reason: str, detail: str) -> None:
    result.skip(directive.where, reason)
    result.problems.append(Problem(directive.where, reason, detail, directive.admin))


def _score(name: str, tables: _Tables) -> float:
    directive = tables.scores.get(name)
    if directive is None or name.startswith("__"):
        # SpamAssassin's defaults: helpers 0, test rules 0.01, others 1.0,
        # and -1.0 for a rule flagged "nice" (it speaks for ham).
        if name.startswith("__"):
            return 0.0
        if name.startswith("T_"):
            return 0.01
        return -1.0 if "nice" in tables.tflags.get(name, []) else 1.0
    values = directive.args.split()[1:]
    try:
        return float(values[0])  # score set 0 (no network tests, no Bayes)
    except (IndexError, ValueError):
        raise _Skip("syntax error", True, f"bad score line {directive.args!r}") from None


def _build(name: str, directive: Directive, tables: _Tables) -> Rule:
    kind = directive.name
    test = directive.args.split(None, 1)[1].strip()
    flags = tables.tflags.get(name, [])
    if test.startswith("eval:"):
        call = evals.normalise(test[len("eval:") :])
        if call not in evals.NATIVE:
            raise _Skip("eval (Perl code)")
        test = ""
    if "net" in flags:
        raise _Skip("network test (tflags net)")
    score = _score(name, tables)
    if score == 0 and not name.startswith("__"):
        raise _Skip("score 0 (disabled)")
    base = Rule(
        name,
        kind,
        score,
        tables.describe.get(name, ""),
        directive.where,
        tflags=tuple(flags),
        priority=tables.priority.get(name, 0),
        maxhits=_maxhits(flags),
    )
    if kind == "meta":
        try:
            return replace(base, expr=parse_meta(test))
        except RuleError as exc:
            raise _Skip("syntax error", True, str(exc)) from None
    if not test:  # a native eval: hits when its function says so
        return replace(base, regex=re.compile(""), text=f"sa-eval:{call}")
    negate, unset, text, header = False, None, f"sa-{kind}", ""
    if kind == "body" and "nosubject" in flags:
        text = "sa-body-nosubject"
    if kind == "header":
        if test.startswith("exists:"):
            field_name = test[len("exists:") :].strip()
            if not field_name:
                raise _Skip("syntax error", True, "exists: needs a header name")
            return replace(base, regex=re.compile(""), text=f"sa-exists:{field_name}")
        match = _HEADER_TEST.match(test)
        if match is None:
            raise _Skip("syntax error", True, "header: expected 'Name =~ /regex/'")
        header, negate, test = match.group(1), match.group(2) == "!~", match.group(3)
        if_unset = _IF_UNSET.search(test)
        if if_unset:
            unset, test = if_unset.group(1), test[: if_unset.start()]
        field_name = header.split(":")[0].lower()
        if field_name in satexts.UNSUPPORTED_HEADERS:
            raise _Skip(f"unsupported pseudo-header {header.split(':')[0]}")
        text = f"sa-header:{header.lower()}" + (f"\0{unset}" if unset is not None else "")
    try:
        pattern, modifiers = split_delimited(test)
        if name in tables.replace:
            pattern = replace_tags(pattern, tables.tags)
        regex = compile_perl(pattern, modifiers)
    except Untranslatable as exc:
        raise _Skip(f"untranslatable regex: {exc.args[0]}", True, str(exc)) from None
    needles, folded = required_literals(regex)
    return replace(
        base,
        regex=regex,
        header=header,
        text=text,
        negate=negate,
        needles=needles,
        folded=folded,
        lead=leading_literals(regex, folded),
    )


def _maxhits(flags: list[str]) -> int:
    for flag in flags:
        if flag.startswith("maxhits="):
            try:
                return max(1, int(flag.partition("=")[2]))
            except ValueError:
                return MAX_COUNT
    return MAX_COUNT if "multiple" in flags else 1


_TAG_RUN = re.compile(r"(?:<[A-Za-z0-9_]+>)+")
_TAG_OPTION = re.compile(r"<(pre|inter|post) ([A-Za-z0-9_]+)>")


def replace_tags(pattern: str, tags: dict[str, dict[str, str]]) -> str:
    """ReplaceTags: ``<pre X>``, ``<inter X>``, ``<post X>`` choose what goes
    before, between and after tags; each known ``<TAG>`` becomes its value."""
    chosen = {"pre": "", "inter": "", "post": ""}
    for match in _TAG_OPTION.finditer(pattern):
        chosen[match.group(1)] = tags.get(match.group(1), {}).get(match.group(2), "")
    pattern = _TAG_OPTION.sub("", pattern)
    values = tags.get("tag", {})

    def expand(run: re.Match[str]) -> str:
        names = re.findall(r"<([A-Za-z0-9_]+)>", run.group())
        parts = [
            f"{chosen['pre']}(?:{values[n]}){chosen['post']}" if n in values else f"<{n}>"
            for n in names
        ]
        return chosen["inter"].join(parts)

    return _TAG_RUN.sub(expand, pattern)


def _resolve_metas(result: SaLoad, tables: _Tables) -> None:
    """Metas naming rules not loaded: such a name counts as no hit where that
    can only make the meta hit less; else the meta is skipped. Repeated until
    nothing changes (a skipped meta is itself a missing rule)."""
    changed = True
    while changed:
        changed = False
        for name, rule in list(result.rules.items()):
            if rule.kind != "meta":
                continue
            missing = names_in(rule.expr) - set(result.rules)
            if not missing:
                continue
            signs = polarity(rule.expr)
            if any(-1 in signs[m] for m in missing):
                reason = "meta needs a skipped rule (negated or compared)"
            else:
                expr = replace_names(rule.expr, dict.fromkeys(missing, 0.0))
                if _can_hit(expr, signs, result.rules):
                    result.rules[name] = replace(rule, expr=expr)
                    continue
                reason = "meta needs skipped rules to hit"
            del result.rules[name]
            result.skip(rule.source, reason)
            changed = True


def _can_hit(expr: object, signs: dict[str, set[int]], rules: dict[str, Rule]) -> bool:
    """Whether ``expr`` can be true: the names that help it at their most, the others at 0."""

    def most(name: str) -> float:
        rule = rules.get(name)
        if rule is None or signs.get(name) == {-1}:
            return 0.0
        return float(rule.maxhits)

    return bool(evaluate(expr, most))  # type: ignore[arg-type]
