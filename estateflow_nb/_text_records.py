"""Validation of a CSV file's records by column position: `clean_record`'s rules, without a dict or
a call per field for the common record (see TextRecords)."""

from __future__ import annotations

import operator
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
            self.pick = operator.itemgetter(*(where[c] for c in RECORD_COLUMNS))

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

    def _common(self, raw: tuple[str, ...]) -> tuple[Any, ...] | None:
        """The record when every check passes on the way `clean_record` would pass it; else None."""
        # No field is too long when all of them together are not (one C call instead of one a field);
        # a longer record goes to `clean_record`, which looks field by field.
        if len("".join(raw)) > MAX_TEXT_LENGTH:
            return None
        values = list(map(str.strip, raw))
        first, last, email, phone, company, license, industry, state, city, _, _, tier, status, flag, made, upd = values
        if not (first and last and license and city and email) or not EMAIL_RE.match(email):
            return None
        sector, place = _INDUSTRY.get(industry.lower()), _STATE.get(state.upper())
        level, standing = _TIER.get(tier.lower() or "free"), _STATUS.get(status.lower() or "pending")
        if sector is None or place is None or level is None or standing is None:
            return None
        featured = _FLAG_VALUES.get(flag.lower())
        if featured is None:
            return None
        rating_text, reviews_text = raw[9], raw[10]  # as given: float() and int() take the spaces
        rating: float | None = None
        reviews = 0
        try:
            if rating_text != "":
                if not rating_text.isascii() or "_" in rating_text:
                    return None
                rating = float(rating_text)
                if not 1.0 <= rating <= 5.0:
                    return None
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
            if upd:
                datetime.fromisoformat(upd)
            else:
                upd = made
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
