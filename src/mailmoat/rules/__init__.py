"""The rules engine: rule language, literal prefilter and matcher.

Modules: ``model`` (the ``Rule`` type), ``meta`` (meta expressions),
``loading`` (TOML rule files), ``prefilter`` (required and leading
literals, the one-pass scan), ``matcher`` (``RuleSet``: a prepared rule set
and the texts it searches). The public names are re-exported here.
"""

from mailmoat.rules.loading import compile_rule, load_rules, rule_sources
from mailmoat.rules.matcher import BODY_LIMIT, RAW_LIMIT, RuleSet, match
from mailmoat.rules.meta import compile_meta, evaluate, names_in, parse_meta
from mailmoat.rules.model import KINDS, Expr, Rule, RuleError
from mailmoat.rules.prefilter import (
    FOLDS_TO_ASCII,
    TRIES,
    fold,
    fold_for_literals,
    leading_literals,
    required_literals,
)

__all__ = [
    "BODY_LIMIT",
    "FOLDS_TO_ASCII",
    "KINDS",
    "RAW_LIMIT",
    "TRIES",
    "Expr",
    "Rule",
    "RuleError",
    "RuleSet",
    "compile_meta",
    "compile_rule",
    "evaluate",
    "fold",
    "fold_for_literals",
    "leading_literals",
    "load_rules",
    "match",
    "names_in",
    "parse_meta",
    "required_literals",
    "rule_sources",
]
