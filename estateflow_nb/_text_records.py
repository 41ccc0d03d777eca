"""Validation of a CSV file's records by column position: `clean_record`'s rules, without a dict or
a call per field for the common record (see TextRecords)."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .schema import (
    _FALSE,
    _TRUE,
    EMAIL_RE,
    INDUSTRIES,
    MAX_INTEGER,
    MAX_TEXT_LENGTH,
    RECORD_COLUMNS,
    STATES,
    SUBSCRIPTION_TIERS,
    VERIFICATION_STATUSES,
    clean_record,
)

_FLAG_VALUES = {**dict.fromkeys(_TRUE, 1), **dict.fromkeys(_FALSE, 0)}
# Each allowed value maps to itself: every record then holds the one string object of its value, which
# marshal sends once a batch (by reference) and the importer keeps once, instead of one copy a record.
_INDUSTRY, _STATE = {v: v for v in INDUSTRIES}, {v: v for v in STATES}
_TIER, _STATUS = {v: v for v in SUBSCRIPTION_TIERS}, {v: v for v in VERIFICATION_STATUSES}
# The numbers most records hold, read once: a rating with one decimal, a review count below 1,000.
_RATINGS = {text: float(text) for text in (f"{tenths / 10:.1f}" for tenths in range(10, 51))}
_COUNTS = {str(n): n for n in range(1000)}


class TextRecords:
    """`clean_record` for records of text in one column order (a CSV file's), by column position.

    The common record, every field well formed, goes through one pass of inline checks with no dict
    and no call per field: most of an import's CPU went into validating. Anything unusual (a short
    row, a field too long, any value the checks below do not pass) goes to `clean_record` itself,
    which accepts or rejects it with its own reason: this path decides nothing `clean_record` would
    decide otherwise, it only gets there sooner. (Text decoded from UTF-8 holds no lone surrogate, so
    `_text`'s Unicode check has nothing to find here.)
    """

    def __init__(self, header: list[str], now: str) -> None:
        self.header, self.now, self.width = header, now, len(header)
        where = {name: i for i, name in enumerate(header)}
        self.pick = None
        if all(c in where for c in RECORD_COLUMNS):
            positions = [where[c] for c in RECORD_COLUMNS]
            # Columns in the stored order are taken as they are: copying the list costs a quarter of picking.
            in_order = positions == list(range(self.width))
            self.pick = operator.itemgetter(slice(None)) if in_order else operator.itemgetter(*positions)

    def raw(self, fields: list[str]) -> dict[str, Any]:
        """The record as `clean_record` and the rejects file take it."""
        return dict(zip(self.header, fields))  # noqa: B905 (a short row leaves columns out, as the reader does)

    def clean(self, fields: list[str]) -> tuple[Any, ...]:
        """The clean record, or RecordRejected with clean_record's reason."""
        if self.pick is not None and len(fields) == self.width:
            row = self._common(self.pick(fields))
            if row is not None:
                return row
        return clean_record(self.raw(fields), self.now)

    def _common(self, raw: Sequence[str]) -> tuple[Any, ...] | None:
        """The record when every check passes on the way `clean_record` would pass it; else None."""
        # No field is too long when all of them together are not (one C call instead of one a field);
        # a longer record goes to `clean_record`, which looks field by field.
        if len("".join(raw)) > MAX_TEXT_LENGTH:
            return None
        first, last, email, phone, company, license, industry, state, city, _, _, tier, status, flag, made, upd = map(
            str.strip, raw
        )
        if not (first and last and license and city and email):
            return None
        # EMAIL_RE without the regex, for an address of printable text without a space (so with no
        # whitespace: every other whitespace character is unprintable): one "@", text before it, and a
        # dot inside the text after it. Any other address goes to the regex.
        local, _, domain = email.partition("@")
        plain = local and "." in domain[1:-1] and "@" not in domain and " " not in email and email.isprintable()
        if not plain and not EMAIL_RE.match(email):
            return None
        # A value spelt as it is stored is found as it is; any other spelling after the case change that
        # clean_record makes.
        sector = _INDUSTRY.get(industry) or _INDUSTRY.get(industry.lower())
        place = _STATE.get(state) or _STATE.get(state.upper())
        level = _TIER.get(tier) or _TIER.get(tier.lower() or "free")
        standing = _STATUS.get(status) or _STATUS.get(status.lower() or "pending")
        if sector is None or place is None or level is None or standing is None:
            return None
        featured = _FLAG_VALUES.get(flag)
        if featured is None:
            featured = _FLAG_VALUES.get(flag.lower())
            if featured is None:
                return None
        rating_text, reviews_text = raw[9], raw[10]  # as given: float() and int() take the spaces
        rating, reviews = _RATINGS.get(rating_text), _COUNTS.get(reviews_text)
        try:
            if rating is None and rating_text != "":
                if not rating_text.isascii() or "_" in rating_text:
                    return None
                rating = float(rating_text)
                if not 1.0 <= rating <= 5.0:
                    return None
            if reviews is None:
                reviews = 0
                if reviews_text != "":
                    if not reviews_text.isascii() or "_" in reviews_text:
                        return None
                    reviews = int(reviews_text)
                    if not 0 <= reviews <= MAX_INTEGER:
                        return None
            if made:
                datetime.fromisoformat(made)
            else:
                made = self.now
            if not upd:
                upd = made
            elif upd != made:
                datetime.fromisoformat(upd)
        except ValueError:
            return None
        return (
            first,
            last,
            email,
            phone or None,
            company or None,
            license,
            sector,
            place,
            city,
            rating,
            reviews,
            level,
            standing,
            featured,
            made,
            upd,
        )
