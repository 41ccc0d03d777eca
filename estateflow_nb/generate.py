"""Deterministic synthetic professionals: realistic enough to demo with, exact enough to test with.

`generate_records(n)` yields records as dicts in `RECORD_COLUMNS` order; `write_records(path, n)`
writes them as SQL, CSV or JSON Lines; `write_ladder()` writes the four files of the import ladder.
The same arguments always give the same records and byte-identical files: everything is drawn from
a `random.Random` seeded with a string, never from the clock or from `hash()`.

Like a real directory, the data differs from place to place and trade to trade, so that a report has
differences to show: ratings by industry and state (insurance agents and appraisers rate lower than
real estate agents, California a little lower than Florida), review counts by industry and city size
(a big city's professionals have more reviews), subscription tiers by industry and city size (more
paid listings among mortgage brokers and in big cities) and featured shares by industry.

License numbers embed the record's index (`start + i + 1`), so files written for disjoint ranges
of indexes can be loaded into one table without a single conflict.
"""

from __future__ import annotations

import calendar
import csv
import json
import math
import random
import time
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from itertools import islice
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

from ._files import atomic_text
from ._sql import quote_text
from ._vocabulary import (
    BRANDS,
    CITIES,
    COMPANY_TEMPLATES,
    FIRST_NAMES,
    FIRST_NAMES_SPECIAL,
    LAST_NAMES,
    LAST_NAMES_SPECIAL,
    LAW_ENTITY,
    city_rows,
    words,
)
from .errors import EstateFlowError, SourceError
from .rungs import LADDER_FILES
from .schema import RECORD_COLUMNS

__all__ = ["FORMATS", "LADDER_FILES", "generate_records", "invalid_count", "write_ladder", "write_records"]

T = TypeVar("T")

FORMATS = (".sql", ".csv", ".jsonl")
SQL_ROWS_PER_INSERT = 500  # SQLite builds had a 500-term limit on multi-row VALUES for years
PROGRESS_EVERY = 5000


def _weighted(weighted: Iterable[tuple[T, float]]) -> Callable[[float], T]:
    """A weighted choice driven by one uniform draw in [0, 1).

    Bisecting cumulative weights is several times faster than `Random.choices`, and a plain closure
    is cheaper to call than an object: at half a million records with a dozen choices each, that is
    seconds.
    """
    pairs = list(weighted)
    total = sum(w for _, w in pairs)
    values = [v for v, _ in pairs]
    cum: list[float] = []
    running = 0.0
    for _, w in pairs:
        running += w
        cum.append(running / total)
    # Rounding may leave the last bound a hair under 1.0, and a draw of 0.99999... must not fall
    # off the end.
    cum[-1] = 1.0

    def pick(u: float) -> T:
        return values[bisect_right(cum, u)]

    return pick


def _even(values: Iterable[T]) -> Callable[[float], T]:
    return _weighted((v, 1.0) for v in values)


# --- people -------------------------------------------------------------------------------------

# The words themselves (names, cities, brands, company templates) are in _vocabulary.py; here they
# become draws, in the order they are written there.
_FIRST = _even(words(FIRST_NAMES))
_FIRST_SPECIAL = _even(words(FIRST_NAMES_SPECIAL))
_LAST = _even(words(LAST_NAMES))
_LAST_SPECIAL = _even(words(LAST_NAMES_SPECIAL))
_FIRST_SPECIAL_SHARE = 0.06
_LAST_SPECIAL_SHARE = 0.08

# Letters NFKD does not take apart into a base letter and accents.
_FOLD = str.maketrans({"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "æ": "ae", "ß": "ss"})


@cache
def _fold(text: str) -> str:
    """Lower-case ASCII letters and digits only: 'Nguyễn' -> 'nguyen', "O'Brien" -> 'obrien'."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD)).lower()
    return "".join(c for c in decomposed if c.isascii() and c.isalnum())


_MAIL_DOMAINS = _weighted(
    [
        ("gmail.com", 40),
        ("yahoo.com", 12),
        ("outlook.com", 8),
        ("hotmail.com", 7),
        ("icloud.com", 6),
        ("aol.com", 3),
        ("comcast.net", 3),
        ("att.net", 2),
        ("msn.com", 1),
        ("proton.me", 1),
    ]
)
_COMPANY_MAIL_SHARE = 0.3


def _positional(template: str, *names: str) -> str:
    """'{last} Law' -> '{3} Law' for names (..., 'last', ...): positional format skips building a
    keyword dict per call, which is a tenth of the time of a record."""
    return template.format(**{name: f"{{{index}}}" for index, name in enumerate(names)})


# Read as: first name, last name, first initial, a number that makes the address unique.
_MAIL_LOCALS = _weighted(
    (_positional(pattern, "f", "l", "i", "n"), weight)
    for pattern, weight in [
        ("{f}.{l}{n}", 45),
        ("{f}{l}{n}", 20),
        ("{i}{l}{n}", 20),
        ("{f}_{l}{n}", 5),
        ("{l}.{f}{n}", 10),
    ]
)

# --- places ---------------------------------------------------------------------------------------

# Cities by size: a big city (900,000 people or more), a mid-sized one (200,000 or more), a small one.
CitySize = Literal["big", "mid", "small"]


def _size(population_thousands: int) -> CitySize:
    return "big" if population_thousands >= 900 else "mid" if population_thousands >= 200 else "small"


_CITIES = {
    state: _weighted(((city, codes, _size(population)), population) for city, population, codes in city_rows(rows))
    for state, rows in CITIES.items()
}
# Florida first: the directory started there, so it has more professionals than its population says.
_STATES = _weighted([("FL", 40), ("TX", 30), ("CA", 30)])
_PHONE_MISSING_SHARE = 0.03
# Exchanges never start with 0 or 1, and N11 codes (411, 911, ...) are services, not exchanges.
_EXCHANGES = [str(e) for e in range(200, 1000) if e % 100 != 11]
_LINES = [f"{line:04d}" for line in range(10000)]

# --- companies ------------------------------------------------------------------------------------

_BRANDS = {state: _even(words(brands)) for state, brands in BRANDS.items()}
_COMPANY_FIELDS = ("brand", "city", "first", "last", "last2", "entity")
_COMPANIES = {
    industry: _even(_positional(t, *_COMPANY_FIELDS) for t in words(templates, "|"))
    for industry, templates in COMPANY_TEMPLATES.items()
}
_NO_COMPANY_SHARE = 0.08


@cache
def _company_domain(company: str) -> str:
    """'Lone Star Title & Escrow' -> 'lonestartitleescrow.com'; the legal form after a comma is dropped."""
    return _fold(company.split(",")[0]) + ".com"


# --- the rest of a record -------------------------------------------------------------------------

_INDUSTRIES = _weighted(
    [
        ("real_estate", 45),
        ("mortgage", 15),
        ("insurance", 15),
        ("legal", 10),
        ("home_inspection", 8),
        ("appraisal", 7),
    ]
)
_LICENSE_CODES = {
    "real_estate": "RE",
    "mortgage": "MLO",
    "insurance": "INS",
    "legal": "BAR",
    "home_inspection": "HI",
    "appraisal": "APR",
}
# Paid listings sell better in some trades and in big cities: the paid tiers' weights are scaled by
# both, the free tier's is not.
_TIER_WEIGHTS = (("free", 55.0), ("basic", 25.0), ("premium", 15.0), ("enterprise", 5.0))
_PAID_BY_INDUSTRY = {
    "real_estate": 1.0,
    "mortgage": 1.6,
    "insurance": 1.4,
    "legal": 1.25,
    "home_inspection": 0.7,
    "appraisal": 0.55,
}
_PAID_BY_SIZE = {"big": 1.3, "mid": 1.0, "small": 0.7}
_VERIFICATION = _weighted([("verified", 70), ("pending", 20), ("rejected", 5), ("expired", 5)])
# Featuring is sold with the paid tiers and only shown for verified profiles (a few pending ones
# are featured by hand), which averages to about 5%; some trades buy it more than others.
_FEATURED_BY_TIER = {"free": 0.015, "basic": 0.05, "premium": 0.18, "enterprise": 0.40}
_FEATURED_BY_VERIFICATION = {"verified": 1.0, "pending": 0.25, "rejected": 0.0, "expired": 0.0}
_FEATURED_BY_INDUSTRY = {
    "real_estate": 1.25,
    "mortgage": 1.0,
    "insurance": 0.85,
    "legal": 1.1,
    "home_inspection": 0.7,
    "appraisal": 0.5,
}

# Where each trade's ratings centre (a bell), and how heavy its tail of unhappy clients is; a state
# moves the centre a little.
_RATING_CENTRE = {
    "real_estate": (4.75, 4.0),
    "mortgage": (4.6, 4.0),
    "insurance": (4.3, 7.0),
    "legal": (4.5, 5.0),
    "home_inspection": (4.7, 4.0),
    "appraisal": (4.15, 6.0),
}
_RATING_BY_STATE = {"FL": 0.05, "TX": 0.0, "CA": -0.12}
# The median review count is about e**mu: a trade's own, moved up in big cities and down in small ones.
_REVIEWS_MU = {
    "real_estate": 2.4,
    "mortgage": 2.0,
    "insurance": 1.8,
    "legal": 1.9,
    "home_inspection": 2.6,
    "appraisal": 1.5,
}
_REVIEWS_BY_SIZE = {"big": 0.55, "mid": 0.15, "small": -0.3}


def _tiers(industry: str, size: CitySize) -> Callable[[float], str]:
    scale = _PAID_BY_INDUSTRY[industry] * _PAID_BY_SIZE[size]
    return _weighted((tier, weight * (1 if tier == "free" else scale)) for tier, weight in _TIER_WEIGHTS)


def _rating_weight(tenths: int, centre: float, tail: float) -> float:
    # A bell around the centre for the happy majority, a long thin tail down to 1.0 for the rest.
    value = tenths / 10
    return 100 * math.exp(-(((value - centre) / 0.45) ** 2)) + (tail if value >= 3.0 else tail * 0.3)


def _ratings(industry: str, state: str) -> Callable[[float], float]:
    centre, tail = _RATING_CENTRE[industry]
    centre += _RATING_BY_STATE[state]
    return _weighted((t / 10, _rating_weight(t, centre, tail)) for t in range(10, 51))


def _review_weight(count: int, mu: float) -> float:
    # Log-normal: the median profile has about e**mu reviews, one in a hundred several hundred.
    def below(x: float) -> float:
        return 0.5 * (1 + math.erf((math.log(x) - mu) / (1.2 * math.sqrt(2))))

    return below(count + 1) - below(count)


def _reviews(industry: str, size: CitySize) -> Callable[[float], int]:
    # A table rather than exp(gauss()) per record: one bisect instead of a Python-level gauss. It starts
    # at 1 because every record has a rating, and a rating from zero reviews would be a contradiction.
    mu = _REVIEWS_MU[industry] + _REVIEWS_BY_SIZE[size]
    return _weighted((count, _review_weight(count, mu)) for count in range(1, 2501))


# One draw per (trade, place) pair, built once, in a fixed order (dicts keep it): same seed, same bytes.
_SIZES: tuple[CitySize, ...] = ("big", "mid", "small")
_TIERS = {(i, s): _tiers(i, s) for i in _PAID_BY_INDUSTRY for s in _SIZES}
_RATINGS = {(i, s): _ratings(i, s) for i in _RATING_CENTRE for s in _RATING_BY_STATE}
_REVIEWS = {(i, s): _reviews(i, s) for i in _REVIEWS_MU for s in _SIZES}

_EPOCH_FIRST = calendar.timegm((2019, 1, 1, 0, 0, 0))
_EPOCH_LAST = calendar.timegm((2026, 10, 31, 23, 59, 59))
_DAYS = [
    time.strftime("%Y-%m-%d", time.gmtime(_EPOCH_FIRST + d * 86400))
    for d in range((_EPOCH_LAST - _EPOCH_FIRST) // 86400 + 1)
]
_MINUTES = [f"{m // 60:02d}:{m % 60:02d}" for m in range(1440)]
_NEVER_UPDATED_SHARE = 0.15


def _timestamp(epoch: int) -> str:
    # strftime per value costs more than the rest of the record; days and minutes are precomputed.
    day, seconds = divmod(epoch - _EPOCH_FIRST, 86400)
    minute, seconds = divmod(seconds, 60)
    return f"{_DAYS[day]}T{_MINUTES[minute]}:{seconds:02d}Z"


# --- deliberately broken records --------------------------------------------------------------------

_COLUMN = {name: index for index, name in enumerate(RECORD_COLUMNS)}


def _bad_email(row: list[Any], rng: random.Random) -> None:
    local, _, domain = row[_COLUMN["email"]].partition("@")
    row[_COLUMN["email"]] = rng.choice(
        [
            f"{local} at {domain}",
            f"{local}@@{domain}",
            f"{local}@{domain.split('.')[0]}",
            f"{local}@{domain.replace('.', ',')}",
            f"{local.replace('.', ' ')} @{domain}",
        ]
    )


def _bad_rating(row: list[Any], rng: random.Random) -> None:
    row[_COLUMN["rating"]] = rng.choice([7.5, 0.0, 5.5, 10.0])


def _bad_industry(row: list[Any], rng: random.Random) -> None:
    row[_COLUMN["industry"]] = rng.choice(["plumbing", "real estate", "realtor", "property_management", "banking"])


def _missing_city(row: list[Any], rng: random.Random) -> None:
    row[_COLUMN["city"]] = rng.choice([None, "", "  "])


def _negative_review_count(row: list[Any], rng: random.Random) -> None:
    row[_COLUMN["review_count"]] = -rng.randint(1, 50)


def _bad_timestamp(row: list[Any], rng: random.Random) -> None:
    column = _COLUMN[rng.choice(["created_at", "updated_at"])]
    good = row[column]
    row[column] = rng.choice(
        [
            f"{good[5:7]}/{good[8:10]}/{good[:4]} {good[11:16]}",  # US style, as a spreadsheet exports it
            f"{good[:8]}32{good[10:]}",  # no month has a 32nd
            "N/A",
        ]
    )


def _bad_state(row: list[Any], rng: random.Random) -> None:
    row[_COLUMN["state"]] = rng.choice(["NY", "Florida", "Texas", "GA", "XX", "Calif."])


# Each is rejected by schema.clean_record for a different reason.
_BREAKAGES: tuple[Callable[[list[Any], random.Random], None], ...] = (
    _bad_email,
    _bad_rating,
    _bad_industry,
    _missing_city,
    _negative_review_count,
    _bad_timestamp,
    _bad_state,
)


def invalid_count(n: int, invalid_share: float) -> int:
    """How many of `n` records `invalid_share` breaks: exactly this many, not about this many."""
    return round(n * invalid_share)


def _broken(n: int, seed: int, start: int, invalid_share: float) -> dict[int, Callable[..., None]]:
    # A generator of its own, so breaking records leaves every other value as the clean run has it:
    # the only difference between share 0 and share 0.1 is the broken fields.
    rng = random.Random(f"{seed}:{start}:invalid")
    picked = rng.sample(range(n), invalid_count(n, invalid_share))
    return {index: rng.choice(_BREAKAGES) for index in picked}


# --- generation -------------------------------------------------------------------------------------


def _check(n: int, start: int, invalid_share: float) -> None:
    # Arguments come from a command line too, so these are one-line errors the CLI can show.
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise EstateFlowError(f"the number of records must be a whole number >= 0, not {n!r}")
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise EstateFlowError(f"start must be a whole number >= 0, not {start!r}")
    if not 0.0 <= invalid_share <= 1.0:
        raise EstateFlowError(f"invalid_share must be between 0 and 1, not {invalid_share!r}")


def _rows(n: int, seed: int, start: int, invalid_share: float) -> Iterator[tuple[Any, ...]]:
    """The records as tuples in RECORD_COLUMNS order: the writers need no dicts."""
    rng = random.Random(f"{seed}:{start}")
    u = rng.random
    broken = _broken(n, seed, start, invalid_share) if invalid_share else {}
    breaker = random.Random(f"{seed}:{start}:invalid:values")
    span = _EPOCH_LAST - _EPOCH_FIRST
    for i in range(n):
        number = start + i + 1
        industry = _INDUSTRIES(u())
        state = _STATES(u())
        city, area_codes, size = _CITIES[state](u())
        first = _FIRST_SPECIAL(u()) if u() < _FIRST_SPECIAL_SHARE else _FIRST(u())
        last = _LAST_SPECIAL(u()) if u() < _LAST_SPECIAL_SHARE else _LAST(u())

        if u() < _NO_COMPANY_SHARE:
            company = None
        else:
            # In the order of _COMPANY_FIELDS.
            company = _COMPANIES[industry](u()).format(
                _BRANDS[state](u()), city, first, last, _LAST(u()), LAW_ENTITY[state]
            )
        given, family = _fold(first), _fold(last)
        local = _MAIL_LOCALS(u()).format(given, family, given[0], number)
        domain = _company_domain(company) if company is not None and u() < _COMPANY_MAIL_SHARE else _MAIL_DOMAINS(u())

        if u() < _PHONE_MISSING_SHARE:
            phone = None
        else:
            area = area_codes[int(u() * len(area_codes))]
            phone = f"({area}) {_EXCHANGES[int(u() * len(_EXCHANGES))]}-{_LINES[int(u() * 10000)]}"

        reviews = _REVIEWS[industry, size](u())
        # A handful of reviews is where perfect scores live.
        rating = 5.0 if reviews <= 3 and u() < 0.35 else _RATINGS[industry, state](u())
        tier = _TIERS[industry, size](u())
        verification = _VERIFICATION(u())
        chance = _FEATURED_BY_TIER[tier] * _FEATURED_BY_VERIFICATION[verification] * _FEATURED_BY_INDUSTRY[industry]
        featured = 1 if u() < chance else 0

        # sqrt: sign-ups grow over the years instead of arriving evenly.
        created = _EPOCH_FIRST + int(span * math.sqrt(u()))
        updated = created if u() < _NEVER_UPDATED_SHARE else created + int((_EPOCH_LAST - created) * u())

        row = (
            first,
            last,
            f"{local}@{domain}",
            phone,
            company,
            f"{state}-{_LICENSE_CODES[industry]}-{number:08d}",
            industry,
            state,
            city,
            rating,
            reviews,
            tier,
            verification,
            featured,
            _timestamp(created),
            _timestamp(updated),
        )
        breakage = broken.get(i)
        if breakage is not None:
            values = list(row)
            breakage(values, breaker)
            row = tuple(values)  # type: ignore[assignment]  # broken on purpose: any types
        yield row


def generate_records(n: int, *, seed: int = 42, start: int = 0, invalid_share: float = 0.0) -> Iterator[dict[str, Any]]:
    """An iterator of `n` synthetic records: dicts keyed by RECORD_COLUMNS, in that order.

    `start` is the index of the first record; license numbers are `<state>-<code>-<start+i+1>`, so
    disjoint ranges never share one. `invalid_share` breaks `round(n * invalid_share)` records, each
    in one way that `schema.clean_record` rejects; the other records stay exactly as with share 0.
    """
    _check(n, start, invalid_share)  # here, not at the first next(): this is not a generator function
    return (dict(zip(RECORD_COLUMNS, row, strict=True)) for row in _rows(n, seed, start, invalid_share))


# --- writing ------------------------------------------------------------------------------------------


def _sql_value(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return quote_text(value)
    return repr(value)


_INSERT = f"INSERT INTO professionals ({', '.join(RECORD_COLUMNS)}) VALUES "


def _write_sql(f: IO[str], rows: Iterator[tuple[Any, ...]], progress: Callable[[int], None]) -> None:
    f.write("BEGIN TRANSACTION;\n")
    while chunk := list(islice(rows, SQL_ROWS_PER_INSERT)):
        values = ",\n".join("(" + ", ".join(map(_sql_value, row)) + ")" for row in chunk)
        f.write(f"{_INSERT}{values};\n")
        progress(len(chunk))
    f.write("COMMIT;\n")


def _write_csv(f: IO[str], rows: Iterator[tuple[Any, ...]], progress: Callable[[int], None]) -> None:
    writer = csv.writer(f)
    writer.writerow(RECORD_COLUMNS)
    while chunk := list(islice(rows, PROGRESS_EVERY)):
        writer.writerows(chunk)  # the csv module writes None as an empty field
        progress(len(chunk))


# One encoder for all lines: json.dumps with any option builds a new encoder per call.
_JSON = json.JSONEncoder(ensure_ascii=False)


def _write_jsonl(f: IO[str], rows: Iterator[tuple[Any, ...]], progress: Callable[[int], None]) -> None:
    encode = _JSON.encode
    while chunk := list(islice(rows, PROGRESS_EVERY)):
        f.write("".join(encode(dict(zip(RECORD_COLUMNS, row, strict=True))) + "\n" for row in chunk))
        progress(len(chunk))


_WRITERS = {".sql": _write_sql, ".csv": _write_csv, ".jsonl": _write_jsonl}


class _Batched:
    """Passes record counts to `progress` every PROGRESS_EVERY records rather than per SQL statement."""

    def __init__(self, progress: Callable[[int], None] | None) -> None:
        self.progress = progress
        self.pending = 0

    def __call__(self, records: int) -> None:
        self.pending += records
        if self.pending >= PROGRESS_EVERY:
            self.flush()

    def flush(self) -> None:
        if self.progress is not None and self.pending:
            self.progress(self.pending)
        self.pending = 0


def write_records(
    path: str | Path,
    n: int,
    *,
    seed: int = 42,
    start: int = 0,
    invalid_share: float = 0.0,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Write `n` generated records to `path` as SQL, CSV or JSON Lines (by suffix); return the path.

    The file appears complete or not at all: it is written under a temporary name in the same
    folder and renamed. `progress` gets the number of records written since its last call, every
    few thousand records and once at the end. Same arguments, same bytes.
    """
    path = Path(path)
    writer = _WRITERS.get(path.suffix.lower())
    if writer is None:
        kind = path.suffix or "a file without a suffix"
        raise SourceError(f"{path}: cannot write {kind}; use one of {', '.join(FORMATS)}")
    _check(n, start, invalid_share)
    batched = _Batched(progress)
    with atomic_text(path) as f:
        writer(f, _rows(n, seed, start, invalid_share), batched)
    batched.flush()
    return path


def write_ladder(directory: str | Path = "data", *, seed: int = 42, overwrite: bool = False) -> list[Path]:
    """Write the ladder's SQL files into `directory`; return their paths in ladder order.

    Each file continues the indexes of the one before (starts 0, 10, 110, 1110), so all of them can
    be imported into one table: 11,110 distinct license numbers. Existing files are kept unless
    `overwrite`.
    """
    directory = Path(directory)
    paths: list[Path] = []
    start = 0
    for name, n in LADDER_FILES:
        path = directory / name
        if overwrite or not path.exists():
            write_records(path, n, seed=seed, start=start)
        paths.append(path)
        start += n
    return paths
