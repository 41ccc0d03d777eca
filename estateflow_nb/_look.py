"""How results look wherever they are shown: the colours, the pass and fail marks, the verdict words.

Verify's terminal table, the views' tables and headers, the figures and the widget panels all take
them from here, so that a pass (or a failure) looks the same in every one of them.
"""

from __future__ import annotations

from typing import Literal

from .schema import INDUSTRIES

# What a value says about the result it belongs to, and so its colour.
Outcome = Literal["pass", "fail", "neutral"]

PASS_COLOUR = "#2e7d32"
FAIL_COLOUR = "#c62828"
# A verdict box that is neither a pass nor a failure: a plan, a dry run, a page without a verdict.
NEUTRAL_COLOUR = "#546e7a"
COLOURS: dict[Outcome, str] = {"pass": PASS_COLOUR, "fail": FAIL_COLOUR, "neutral": NEUTRAL_COLOUR}

# Figures: bars that are counts (neither pass nor fail), what is left out or missing, featured
# professionals, and one colour per rung and per industry, the same in every figure.
BAR_COLOUR = "#1f77b4"
MUTED_COLOUR = "#9e9e9e"
FEATURED_COLOUR = "#f9a825"
SERIES = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
INDUSTRY_COLOURS = dict(zip(INDUSTRIES, SERIES, strict=False))

# The mark of a check or a benchmark: in the notebooks' tables, and in the terminal's.
Mark = Literal["✔\u00a0pass", "✘\u00a0FAIL"]
PASS_MARK: Mark = "✔\u00a0pass"
FAIL_MARK: Mark = "✘\u00a0FAIL"
TerminalMark = Literal["PASS", "FAIL"]

# The words of a verdict: a verification's closing line, the word for a verification, a yes or no.
VerificationLine = Literal["All verification checks passed.", "Verification FAILED."]
Passed = Literal["passed", "FAILED"]
YesNo = Literal["-", "yes", "NO"]

# The verdict in a report's header box.
Verdict = Literal[
    "PASSED",
    "FAILED",
    "LADDER PASSED",
    "DRY RUN",
    "IMPORT FAILED",
    "VERIFICATION FAILED",
    "BELOW TARGET",
    "STOPPED",
    "ROLLED BACK",
    "PLAN ONLY",
    "NOTHING TO ROLL BACK",
]

# A ladder's verdict when one of its rungs missed: that rung's own verdict, in capitals.
MISSED_RUNG: dict[str | None, Verdict] = {
    "import failed": "IMPORT FAILED",
    "verification failed": "VERIFICATION FAILED",
    "below target": "BELOW TARGET",
}

# Table cells that say how something went, by how they begin or a word they hold: "✔ pass", "yes" and
# "pass" are good; "✘ FAIL", "NO", "failed", "import failed" and "below target" bad; "completed",
# "dry run" or "-" neither.
_GOOD_STARTS = ("✔", "pass", "yes")
_BAD_STARTS = ("✘", "FAIL", "NO")
_BAD_WORDS = ("failed", "below")


def mark(passed: bool) -> Mark:
    return PASS_MARK if passed else FAIL_MARK


def terminal_mark(passed: bool) -> TerminalMark:
    return "PASS" if passed else "FAIL"


def verdict_of(passed: bool) -> Verdict:
    return "PASSED" if passed else "FAILED"


def verification_line(passed: bool) -> VerificationLine:
    return "All verification checks passed." if passed else "Verification FAILED."


def passed_word(passed: bool) -> Passed:
    return "passed" if passed else "FAILED"


def yes_no(flag: bool | None) -> YesNo:
    """'yes', 'NO', or '-' for a question that was not asked (a rung not verified)."""
    return "-" if flag is None else "yes" if flag else "NO"


def outcome_of(text: str) -> Outcome:
    """Whether a table cell's text says pass, fail or neither."""
    if text.startswith(_GOOD_STARTS):
        return "pass"
    if text.startswith(_BAD_STARTS) or any(word in text for word in _BAD_WORDS):
        return "fail"
    return "neutral"


def cell_style(value: object) -> str:
    """The CSS of a table cell that says how something went: green or red and bold, or nothing."""
    outcome = outcome_of(str(value))
    return "" if outcome == "neutral" else f"color: {COLOURS[outcome]}; font-weight: bold"
