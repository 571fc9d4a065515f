"""SpamAssassin rule files: every directive kind, from small inline .cf snippets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from authfakes import make_tx
from mailmoat.rules.loading import order_metas
from mailmoat.rules.matcher import RuleSet
from mailmoat.rules.sa import SaLoad, load_sa, replace_tags

MESSAGE = (
    b"Received: from relay.example.net (relay.example.net [198.51.100.7])\r\n"
    b"\tby mx.example.org (Postfix) with ESMTP id ABC123\r\n"
    b'From: "Big Winner" <winner@lottery.example>\r\n'
    b"To: you@example.org\r\n"
    b"Cc: other@example.org\r\n"
    b"Subject: =?utf-8?q?You_WON_=E2=82=AC1000?=\r\n"
    b"Message-ID: <abc@lottery.example>\r\n"
    b"X-Mailer: BulkBlaster 2.0\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"\r\n"
    b"<html><body><p>Claim your <b>cash</b> prize now</p>\r\n"
    b"<p>Visit http://claim.lottery.example/now</p>\r\n"
    b"<p>money money money</p></body></html>\r\n"
)


def load(tmp_path: Path, text: str, name: str = "t.cf") -> SaLoad:
    path = tmp_path / name
    path.write_text(text, encoding="latin-1")
    return load_sa([(str(path), True)])


def hits(loaded: SaLoad, message: bytes = MESSAGE, **session: str) -> dict[str, int]:
    rule_set = RuleSet(order_metas(dict(loaded.rules), []))
    return {r.name: n for r, n in rule_set.match_counts(make_tx(message, **session))}


EVERY_KIND = r"""
header SUBJ_WON        Subject =~ /\bWON\b/
header SUBJ_EURO       Subject =~ /\xe2\x82\xac\d+/
header FROM_NAME       From:name =~ /^Big Winner$/
header FROM_ADDR       From:addr =~ /^winner\@lottery\.example$/
header FROM_RAW        From:raw =~ /"Big Winner"/
header SUBJ_RAW_QP     Subject:raw =~ /=\?utf-8\?q\?/i
header ALL_MAILER      ALL =~ /^X-Mailer: BulkBlaster/m
header TOCC_OTHER      ToCc =~ /other\@example/
header MSGID_LOTTERY   MESSAGEID =~ /lottery/
header HAS_MAILER      exists:X-Mailer
header NO_FOO_HEADER   exists:X-Foo
header NOT_OUTLOOK     X-Mailer !~ /Outlook/
header UNSET_DEFAULT   X-Priority =~ /^none$/ [if-unset: none]
header RELAY_RDNS      X-Spam-Relays-External =~ /rdns=relay\.example\.net /
header CLIENT_HELO     X-Spam-Relays-External =~ /^\[ ip=192\.0\.2\.10 rdns= helo=mail\.example\./
body   BODY_CASH       /claim your cash prize/i
body   BODY_SUBJECT    /^You WON/
rawbody RAW_BOLD       /<b>cash<\/b>/
uri    URI_LOTTERY     m{^http://claim\.lottery\.}
full   FULL_MIME       /^MIME-Version: 1\.0$/m
body   __MONEY         /money/
tflags __MONEY         multiple maxhits=2
meta   MONEY_TWICE     __MONEY > 1
meta   SUM_OF_TWO      (SUBJ_WON + BODY_CASH + NO_FOO_HEADER) >= 2
meta   NOT_BOTH        !(SUBJ_WON && BODY_CASH)
"""


def test_every_directive_kind_hits_a_crafted_message(tmp_path: Path) -> None:
    loaded = load(tmp_path, EVERY_KIND)
    assert loaded.problems == [] and loaded.skipped == {}
    found = hits(loaded)
    assert set(found) == {
        "SUBJ_WON",
        "SUBJ_EURO",
        "FROM_NAME",
        "FROM_ADDR",
        "FROM_RAW",
        "SUBJ_RAW_QP",
        "ALL_MAILER",
        "TOCC_OTHER",
        "MSGID_LOTTERY",
        "HAS_MAILER",
        "NOT_OUTLOOK",
        "UNSET_DEFAULT",
        "RELAY_RDNS",
        "CLIENT_HELO",
        "BODY_CASH",
        "BODY_SUBJECT",
        "RAW_BOLD",
        "URI_LOTTERY",
        "FULL_MIME",
        "__MONEY",
        "MONEY_TWICE",
        "SUM_OF_TWO",
    }
    assert found["__MONEY"] == 2  # maxhits=2 of three matches
    quiet = hits(loaded, b"From: a@b.example\r\nSubject: hi\r\n\r\nhello\r\n")
    assert set(quiet) == {"NOT_OUTLOOK", "UNSET_DEFAULT", "CLIENT_HELO", "NOT_BOTH"}


def test_body_rules_match_paragraph_lines_and_nosubject(tmp_path: Path) -> None:
    loaded = load(
        tmp_path,
        "body TWO_LINES /alpha beta/\nbody ACROSS /beta\\s+gamma/\n"
        "body SUBJ_LINE /^Greetings$/\ntflags SUBJ_LINE nosubject\n"
        "body SUBJ_LINE2 /^Greetings$/\n",
    )
    message = b"Subject: Greetings\r\n\r\nalpha\r\nbeta\r\n\r\ngamma\r\n"
    # "alpha\nbeta" is one paragraph (one line), "gamma" the next one.
    assert set(hits(loaded, message)) == {"TWO_LINES", "SUBJ_LINE2"}


def test_scores_descriptions_tflags_and_defaults(tmp_path: Path) -> None:
    loaded = load(
        tmp_path,
        "body ONE_VALUE /a/\nscore ONE_VALUE 2.5\n"
        "body FOUR_VALUES /b/\nscore FOUR_VALUES 1.1 2.2 3.3 4.4\n"
        "body NO_SCORE /c/\ndescribe NO_SCORE Says c\n"
        "body T_TESTING /d/\nbody __HELPER /e/\n"
        "body NICE_ONE /f/\nscore NICE_ONE -1.5\ntflags NICE_ONE nice publish\n"
        "body DISABLED /g/\nscore DISABLED 0\n"
        "body NET_ONE /h/\ntflags NET_ONE net\n"
        "body PRIO /i/\npriority PRIO -100\n",
    )
    rules = loaded.rules
    assert rules["ONE_VALUE"].score == 2.5
    assert rules["FOUR_VALUES"].score == 1.1  # score set 0: no network tests, no Bayes
    assert rules["NO_SCORE"].score == 1.0 and rules["NO_SCORE"].description == "Says c"
    assert rules["T_TESTING"].score == 0.01 and rules["__HELPER"].score == 0.0
    assert rules["NICE_ONE"].score == -1.5 and rules["NICE_ONE"].tflags == ("nice", "publish")
    assert rules["PRIO"].priority == -100
    assert "DISABLED" not in rules and "NET_ONE" not in rules
    assert loaded.skipped == {"score 0 (disabled)": 1, "network test (tflags net)": 1}


def test_later_files_override_definitions_and_scores(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "20_a.cf").write_text("body SAME /first/\nscore SAME 1\n")
    (tmp_path / "rules" / "50_scores.cf").write_text("score SAME 3\n")
    (tmp_path / "rules" / "10_b.cf").write_text("body SAME /never/\nscore SAME 9\n")
    (tmp_path / "local.cf").write_text("score SAME 4.5\n")
    loaded = load_sa([(str(tmp_path / "rules"), False), (str(tmp_path / "local.cf"), True)])
    rule = loaded.rules["SAME"]
    assert rule.regex is not None and rule.regex.pattern == "first"  # 20_a after 10_b
    assert rule.score == 4.5  # the admin's local.cf comes last


def test_ifplugin_if_else_and_include(tmp_path: Path) -> None:
    (tmp_path / "extra.cf").write_text("body INCLUDED /inc/\n")
    loaded = load(
        tmp_path,
        "ifplugin Mail::SpamAssassin::Plugin::ReplaceTags\nbody TAGS_ON /x/\nendif\n"
        "ifplugin Mail::SpamAssassin::Plugin::Razor2\nbody RAZOR /x/\nelse\nbody NO_RAZOR /x/\n"
        "endif\n"
        "if (version >= 3.004000)\nbody NEW_SA /x/\nendif\n"
        "if (version >= 5.000000)\nbody FUTURE_SA /x/\nendif\n"
        "if !plugin(Mail::SpamAssassin::Plugin::DKIM)"
        " && can(Mail::SpamAssassin::Conf::feature_bug6558_free)\n"
        "body NO_DKIM /x/\nendif\n"
        "if can(Mail::SpamAssassin::Conf::unknown_feature)\nbody UNKNOWN_CAN /x/\nendif\n"
        "include extra.cf\n",
    )
    assert set(loaded.rules) == {"TAGS_ON", "NO_RAZOR", "NEW_SA", "NO_DKIM", "INCLUDED"}
    assert loaded.skipped["plugin Razor2 not run"] == 1
    assert loaded.skipped["if condition false"] == 2


def test_meta_arithmetic_and_missing_dependencies(tmp_path: Path) -> None:
    loaded = load(
        tmp_path,
        "body __A /alpha/\nbody __B /beta/\nbody __C /gamma/\n"
        "meta TWO_OF_THREE (__A + __B + __C) > 1\n"
        "meta EXACTLY_ONE (__A + __B + __C) == 1\n"
        "body SKIPPED_EVAL eval:check_something_in_perl()\n"
        "meta NEEDS_EVAL __A && SKIPPED_EVAL\n"
        "meta OR_EVAL __A || SKIPPED_EVAL\n"
        "meta NOT_EVAL __A && !SKIPPED_EVAL\n",
    )
    assert loaded.skipped["eval (Perl code)"] == 1
    assert loaded.skipped["meta needs skipped rules to hit"] == 1  # NEEDS_EVAL
    assert loaded.skipped["meta needs a skipped rule (negated or compared)"] == 1  # NOT_EVAL
    message = b"Subject: s\r\n\r\nalpha beta\r\n"
    assert set(hits(loaded, message)) == {"__A", "__B", "TWO_OF_THREE", "OR_EVAL"}
    one = b"Subject: s\r\n\r\ngamma\r\n"
    assert set(hits(loaded, one)) == {"__C", "EXACTLY_ONE"}


def test_replace_tags(tmp_path: Path) -> None:
    tags = {
        "tag": {"V": "[vV\\\\/]", "I": "[iI1!]"},
        "inter": {"W1": "\\W?"},
        "post": {"P2": "{1,2}"},
    }
    assert (
        replace_tags("<inter W1><post P2><V><I>x<Z>", tags)
        == "(?:[vV\\\\/]){1,2}\\W?(?:[iI1!]){1,2}x<Z>"
    )
    loaded = load(
        tmp_path,
        "replace_tag V (?:[vV]|\\\\\\/)\nreplace_tag I [iI1!]\nreplace_inter W1 \\W?\n"
        "body FUZZY_VI /<inter W1><V><I>agra/i\nreplace_rules FUZZY_VI\n",
    )
    assert set(hits(loaded, b"Subject: s\r\n\r\nbuy \\/.1agra now\r\n")) == {"FUZZY_VI"}


def test_problems_are_reported_with_file_and_line_and_skipped(tmp_path: Path) -> None:
    loaded = load(
        tmp_path,
        "body GOOD /fine/\n"
        "body BAD_REGEX /x{3,2}/\n"
        "body UNTRANSLATABLE /foo\\Kbar/\n"
        "frobnicate_rules everything\n"
        "meta BAD_META (GOOD &&\n"
        "header BAD_HEADER Subject == /x/\n"
        "body\n"
        "endif\n",
    )
    where = {p.where.rpartition(":")[2]: p for p in loaded.problems}
    assert set(loaded.rules) == {"GOOD"}
    assert where["2"].reason.startswith("untranslatable regex: python:")
    assert where["3"].reason == "untranslatable regex: \\K"
    assert where["4"].reason == "unknown directive"
    assert where["5"].reason == where["6"].reason == where["7"].reason == "syntax error"
    assert where["8"].detail == "endif without if"
    assert all(p.admin and p.where.startswith(str(tmp_path / "t.cf")) for p in loaded.problems)


def test_unreadable_file_is_a_fatal_problem(tmp_path: Path) -> None:
    loaded = load_sa([(str(tmp_path / "missing.cf"), True)])
    assert [(p.reason, p.fatal) for p in loaded.problems] == [("unreadable file", True)]


@pytest.mark.parametrize(
    ("ip", "received", "trusted"),
    [
        ("127.0.0.1", b"", True),
        ("192.0.2.10", b"", False),
        ("127.0.0.1", b"Received: from x (x [198.51.100.1]) by y; date\r\n", False),
    ],
)
def test_native_all_trusted(tmp_path: Path, ip: str, received: bytes, trusted: bool) -> None:
    loaded = load(
        tmp_path,
        "ifplugin Mail::SpamAssassin::Plugin::RelayEval\n"
        "header ALL_TRUSTED eval:check_all_trusted()\nendif\n",
    )
    found = hits(loaded, received + b"Subject: s\r\n\r\nx\r\n", ip=ip)
    assert ("ALL_TRUSTED" in found) == trusted


def test_a_nice_rule_without_a_score_line_speaks_for_ham(tmp_path: Path) -> None:
    loaded = load(tmp_path, "header LIST_HINT exists:List-Id\ntflags LIST_HINT nice\n")
    assert loaded.rules["LIST_HINT"].score == -1.0


@pytest.mark.parametrize(
    ("rule", "message", "hit"),
    [
        ("header HAS_TOCC exists:ToCc", b"Cc: a@b.example\r\n\r\nx\r\n", True),
        ("header HAS_TOCC exists:ToCc", b"Subject: s\r\n\r\nx\r\n", False),
        # exists:MessageID names a field spelled that way (a malformed one),
        # not the MESSAGEID pseudo-header.
        ("header ODD_MSGID exists:MessageID", b"Message-ID: <a@b>\r\n\r\nx\r\n", False),
        ("header ODD_MSGID exists:MessageID", b"MessageID: <a@b>\r\n\r\nx\r\n", True),
        ("header ANY_MSGID exists:MESSAGEID", b"Message-ID: <a@b>\r\n\r\nx\r\n", True),
    ],
)
def test_exists_knows_pseudo_headers_by_exact_spelling(
    tmp_path: Path, rule: str, message: bytes, hit: bool
) -> None:
    loaded = load(tmp_path, rule + "\n")
    assert bool(hits(loaded, message)) == hit


FETCHED = (
    b"Received: from localhost (localhost [127.0.0.1]) by home.example; date\r\n"
    b"Received: from gw.lan (gw.lan [192.168.1.1]) by localhost; date\r\n"
    b"Received: from localhost (bot.example [198.51.100.9]) by gw.lan; date\r\n"
    b"Subject: s\r\n\r\nx\r\n"
)


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        # Mail fetched from our own relays: the relays from loopback and private
        # addresses are ours (trusted); the first public one is the sender's.
        ("10.1.2.3", "[ ip=198.51.100.9 rdns=bot.example helo=localhost by=gw.lan "),
        ("127.0.0.1", "[ ip=198.51.100.9 rdns=bot.example helo=localhost by=gw.lan "),
        # Over SMTP from a public client: it is the first untrusted relay.
        ("192.0.2.10", "[ ip=192.0.2.10 "),
    ],
)
def test_untrusted_relays_start_at_the_first_public_address(
    tmp_path: Path, ip: str, expected: str
) -> None:
    loaded = load(
        tmp_path,
        "header HELO_LOCAL X-Spam-Relays-Untrusted =~ /^[^\\]]+ helo=localhost /\n"
        "header FIRST_RELAY X-Spam-Relays-Untrusted =~ /^"
        + re.escape(expected).replace("/", "\\/")
        + "/\n",
    )
    found = hits(loaded, FETCHED, ip=ip)
    assert "FIRST_RELAY" in found
    assert ("HELO_LOCAL" in found) == (ip != "192.0.2.10")
