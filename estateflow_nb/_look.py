"""How results look wherever they are shown: the colours, the pass and fail marks, the verdict words.

Verify's terminal table, the views' tables and headers, the figures and the widget panels all take
them from here, so that a pass (or a failure) looks the same in every one of them.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from .schema import INDUSTRIES

# What a value says about the result it belongs to, and so its colour.
Outcome = Literal["pass", "warn", "fail", "neutral"]

PASS_COLOUR = "#2e7d32"
FAIL_COLOUR = "#c62828"
# Passed, with something a person should look at (rejected records): dark enough for white text.
WARN_COLOUR = "#b26a00"
# A verdict box that is neither a pass nor a failure: a plan, a dry run, a page without a verdict.
NEUTRAL_COLOUR = "#546e7a"
COLOURS: dict[Outcome, str] = {
    "pass": PASS_COLOUR,
    "warn": WARN_COLOUR,
    "fail": FAIL_COLOUR,
    "neutral": NEUTRAL_COLOUR,
}

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
VerificationLine = Literal[
    "All verification checks passed.",
    "Verification passed with warnings.",
    "Verification FAILED.",
    "Verification FAILED: nothing to verify.",
]
Passed = Literal["passed", "FAILED"]
YesNo = Literal["-", "yes", "NO"]

# The verdict in a report's header box.
Verdict = Literal[
    "PASSED",
    "PASSED WITH WARNINGS",
    "FAILED",
    "NOTHING TO VERIFY",
    "LADDER PASSED",
    "LADDER PASSED WITH WARNINGS",
    "NOTHING NEW",
    "TOO MANY REJECTS",
    "DRY RUN",
    "IMPORT FAILED",
    "VERIFICATION FAILED",
    "BELOW TARGET",
    "STOPPED",
    "ROLLED BACK",
    "PLAN ONLY",
    "NOTHING TO ROLL BACK",
    # What a result shown alone in a notebook cell says: an import, a rung, a check, a restore.
    "IMPORTED",
    "IMPORTED WITH REJECTS",
    "RUNG PASSED",
    "RESTORED",
]

# A ladder's verdict when one of its rungs missed: that rung's own verdict, in capitals.
MISSED_RUNG: dict[str | None, Verdict] = {
    "import failed": "IMPORT FAILED",
    "verification failed": "VERIFICATION FAILED",
    "below target": "BELOW TARGET",
    "too many rejects": "TOO MANY REJECTS",
}
# The outcome (and so the colour) of each verdict.
VERDICT_OUTCOMES: dict[Verdict, Outcome] = {
    "PASSED": "pass",
    "LADDER PASSED": "pass",
    "ROLLED BACK": "pass",
    "PASSED WITH WARNINGS": "warn",
    "LADDER PASSED WITH WARNINGS": "warn",
    "DRY RUN": "neutral",
    "NOTHING NEW": "neutral",
    "PLAN ONLY": "neutral",
    "NOTHING TO ROLL BACK": "neutral",
    "IMPORTED": "pass",
    "IMPORTED WITH REJECTS": "warn",
    "RUNG PASSED": "pass",
    "RESTORED": "pass",
}

# Table cells that say how something went, by how they begin or a word they hold: "✔ pass", "yes" and
# "pass" are good; "✘ FAIL", "NO", "failed", "import failed" and "below target" bad; "completed",
# "dry run" or "-" neither.
_GOOD_STARTS = ("✔", "pass", "yes")
_BAD_STARTS = ("✘", "FAIL", "NO")
_BAD_WORDS = ("failed", "below", "too many")
_WARN_STARTS = ("⚠",)


def mark(passed: bool) -> Mark:
    return PASS_MARK if passed else FAIL_MARK


def terminal_mark(passed: bool) -> TerminalMark:
    return "PASS" if passed else "FAIL"


def verdict_of(passed: bool, *, warnings: bool = False, empty: bool = False) -> Verdict:
    """A verification's verdict: nothing to verify (an empty table), failed, passed with warnings, passed."""
    if empty:
        return "NOTHING TO VERIFY"
    if not passed:
        return "FAILED"
    return "PASSED WITH WARNINGS" if warnings else "PASSED"


def outcome_of_verdict(verdict: Verdict) -> Outcome:
    return VERDICT_OUTCOMES.get(verdict, "fail")


def verification_line(passed: bool, *, warnings: bool = False, empty: bool = False) -> VerificationLine:
    if empty:
        return "Verification FAILED: nothing to verify."
    if not passed:
        return "Verification FAILED."
    return "Verification passed with warnings." if warnings else "All verification checks passed."


def passed_word(passed: bool) -> Passed:
    return "passed" if passed else "FAILED"


def yes_no(flag: bool | None) -> YesNo:
    """'yes', 'NO', or '-' for a question that was not asked (a rung not verified)."""
    return "-" if flag is None else "yes" if flag else "NO"


def outcome_of(text: str) -> Outcome:
    """Whether a table cell's text says pass, warn, fail or neither."""
    if text.startswith(_GOOD_STARTS):
        return "pass"
    if text.startswith(_WARN_STARTS):
        return "warn"
    if text.startswith(_BAD_STARTS) or any(word in text for word in _BAD_WORDS):
        return "fail"
    return "neutral"


def cell_style(value: object) -> str:
    """The CSS of a table cell that says how something went: green or red and bold, or nothing."""
    outcome = outcome_of(str(value))
    return "" if outcome == "neutral" else f"color: {COLOURS[outcome]}; font-weight: bold"


# --- numbers and values, one format everywhere ----------------------------------------------------

# Characters that would move the cursor or colour a terminal, or hide in a table: shown as escapes.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]")
VISIBLE_SPACE = "␣"


def count(value: Any) -> str:
    """A whole number with thousands separators: 10,000."""
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def rating(value: Any) -> str:
    """A rating with one decimal: 4.5 (anything else as it is: a rating from a foreign table may be text)."""
    if value is None:
        return "-"
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return f"{value:,.1f}"
    return visible(value)


def share(part: float, whole: float) -> str:
    """`part` of `whole` as a percentage: 1.2%, or <0.1% for a share too small to round to one."""
    return fraction(part / whole) if whole else "-"


def fraction(ratio: float) -> str:
    """A ratio as a percentage with one decimal: 1.2%, or <0.1% for one too small to round to one."""
    if 0 < ratio < 0.001:
        return "<0.1%"
    return f"{ratio:.1%}"


def percent(ratio: float) -> str:
    """A ratio as a percentage without needless decimals: 1%, 2.5%."""
    return f"{ratio * 100:.10g}%"


def milliseconds(value: float) -> str:
    return f"{value:,.2f} ms" if value < 100 else f"{value:,.0f} ms"


def number(value: Any) -> str:
    """Any value of a table cell: whole numbers with separators, other numbers with up to two decimals."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return count(value)
    if isinstance(value, float):
        return count(value) if value.is_integer() else f"{value:,.2f}".rstrip("0").rstrip(".")
    return str(value)


def visible(value: Any, *, every_space: bool = False) -> str:
    """An offending value as a person must see it: (null), (empty), spaces as ␣ where they are leading,
    trailing or doubled (or all of them, `every_space`), control characters as escapes. Text only:
    escaping for HTML comes after, where it is shown."""
    if value is None:
        return "(null)"
    if not isinstance(value, str):
        return number(value)
    if value == "":
        return "(empty)"
    text = _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), value)
    text = text.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    if every_space or text.strip(" ") == "":
        return text.replace(" ", VISIBLE_SPACE)
    stripped = text.strip(" ")
    head = VISIBLE_SPACE * (len(text) - len(text.lstrip(" ")))
    tail = VISIBLE_SPACE * (len(text) - len(text.rstrip(" ")))
    return head + re.sub(r"  +", lambda m: VISIBLE_SPACE * len(m.group()), stripped) + tail


def plural(n: int, word: str, words: str | None = None) -> str:
    """`n` and the word that goes with it: 1 record, 2 records, 1,000 records."""
    return f"{count(n)} {word if n == 1 else words or word + 's'}"
