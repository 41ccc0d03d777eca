"""Questions an analyst asks beyond verification: ratings by profession and place, ratings against
review counts, where the professionals are and who is featured.

Plain SQL that runs on SQLite and D1 alike. Everything is aggregated in the database, so the answers
stay a few hundred rows on any table size (D1 caps what one query may return); the one exception,
`rating_review_sample`, reads an even sample of a bounded size. Plots and widgets take these rows
as they are; `filter_cities` narrows the city rows without another query, for a search box.

Every question takes the same filter, `city` (the city's name contains it, any case) and `industry`,
so that a filtered report is filtered throughout.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .errors import EstateFlowError
from .schema import INDUSTRIES
from .targets import Target


def filter_clause(city: str = "", industry: str = "", *conditions: str) -> tuple[str, tuple[Any, ...]]:
    """A WHERE clause (with its parameters) for the filter and any further `conditions`; unknown
    industries are refused."""
    parts, params = list(conditions), []
    needle = city.strip()
    if needle:
        # LIKE is case-blind (for ASCII letters); the needle's own % and _ are taken literally.
        parts.append("city LIKE ? ESCAPE '\\'")
        params.append("%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
    if industry:
        if industry not in INDUSTRIES:
            raise EstateFlowError(
                f"unknown industry {industry!r}: use one of {', '.join(INDUSTRIES)} (or none for all)"
            )
        parts.append("industry = ?")
        params.append(industry)
    return (" WHERE " + " AND ".join(parts) if parts else ""), tuple(params)


def rating_counts(target: Target, city: str = "", industry: str = "") -> list[dict[str, Any]]:
    """Professionals per industry, state and rating: the exact shape of the ratings (for box plots)."""
    clause, params = filter_clause(city, industry, "rating IS NOT NULL")
    return target.query(
        f"SELECT industry, state, rating, COUNT(*) AS count FROM professionals{clause}"
        " GROUP BY industry, state, rating ORDER BY industry, state, rating",
        params,
    )


def reviews_by_rating(target: Target, city: str = "", industry: str = "") -> list[dict[str, Any]]:
    """Per rating value: how many professionals hold it and their mean and largest review count."""
    clause, params = filter_clause(city, industry, "rating IS NOT NULL")
    return target.query(
        "SELECT rating, COUNT(*) AS count, ROUND(AVG(review_count), 1) AS mean_reviews,"
        f" MAX(review_count) AS max_reviews FROM professionals{clause} GROUP BY rating ORDER BY rating",
        params,
    )


def rating_review_sample(target: Target, size: int = 2000, city: str = "", industry: str = "") -> list[dict[str, Any]]:
    """About `size` professionals spread evenly over the table (every k-th id): rating, reviews, industry."""
    clause, params = filter_clause(city, industry, "rating IS NOT NULL")
    total = int(target.scalar(f"SELECT COUNT(*) FROM professionals{clause}", params) or 0)
    step = max(1, total // max(1, size))
    return target.query(
        f"SELECT id, rating, review_count, industry FROM professionals{clause} AND id % ? = 0 ORDER BY id LIMIT ?",
        (*params, step, size),
    )


def city_counts(target: Target, city: str = "", industry: str = "") -> list[dict[str, Any]]:
    """Professionals, featured professionals, mean rating (of `rated` ratings) per city, state and industry."""
    clause, params = filter_clause(city, industry)
    return target.query(
        "SELECT city, state, industry, COUNT(*) AS count, SUM(is_featured = 1) AS featured,"
        f" AVG(rating) AS avg_rating, COUNT(rating) AS rated FROM professionals{clause}"
        " GROUP BY city, state, industry ORDER BY city, state, industry",
        params,
    )


def featured_by_industry(target: Target, city: str = "", industry: str = "") -> list[dict[str, Any]]:
    """Professionals and featured professionals per industry, most professionals first."""
    clause, params = filter_clause(city, industry)
    return target.query(
        f"SELECT industry, COUNT(*) AS count, SUM(is_featured = 1) AS featured FROM professionals{clause}"
        " GROUP BY industry ORDER BY count DESC, industry",
        params,
    )


def rating_bands(target: Target, city: str = "", industry: str = "") -> list[dict[str, Any]]:
    """Professionals per industry in each rating band (see BANDS), for the share of each band."""
    clause, params = filter_clause(city, industry)
    shape = target.query(
        f"SELECT industry, rating, COUNT(*) AS n FROM professionals{clause} GROUP BY industry, rating", params
    )
    return bands_of(shape)


def band(rating: Any) -> str:
    """The rating band a rating is in: one of BANDS, "not rated" or "out of range"."""
    if rating is None:
        return "not rated"
    if isinstance(rating, int | float) and not isinstance(rating, bool) and 1 <= rating <= 5:
        return next(name for name, low in BANDS if rating >= low)
    return "out of range"


def bands_of(shape: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows of (industry, rating, n) counted into rating bands per industry: what `rating_bands` gives,
    from counts a caller already has (the verification's rating shape)."""
    counted: dict[tuple[Any, str], int] = {}
    for row in shape:
        key = (row["industry"], band(row["rating"]))
        counted[key] = counted.get(key, 0) + int(row["n"])
    return [{"industry": i, "band": b, "count": n} for (i, b), n in sorted(counted.items(), key=lambda kv: str(kv[0]))]


# Rating bands, best first: (name, lowest rating in it). Below the last is out of range.
BANDS = (("4.5 to 5.0", 4.5), ("4.0 to 4.4", 4.0), ("3.0 to 3.9", 3.0), ("1.0 to 2.9", 1.0))


def filter_cities(rows: Iterable[dict[str, Any]], search: str = "", industry: str = "") -> list[dict[str, Any]]:
    """The rows of `city_counts` whose city contains `search` (any case) and, if given, of `industry`."""
    needle = search.strip().casefold()
    return [
        row for row in rows if needle in str(row["city"]).casefold() and (not industry or row["industry"] == industry)
    ]


def cities(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """`city_counts` rows summed over industries: one row per city and state, most professionals first."""
    merged: dict[tuple[Any, Any], dict[str, Any]] = {}
    for row in rows:
        city = merged.setdefault(
            (row["city"], row["state"]),
            {"city": row["city"], "state": row["state"], "count": 0, "featured": 0, "rated": 0, "sum": 0.0},
        )
        city["count"] += row["count"]
        city["featured"] += int(row["featured"] or 0)
        city["rated"] += row["rated"]
        city["sum"] += (row["avg_rating"] or 0.0) * row["rated"]
        city.setdefault("by_industry", {})[row["industry"]] = row["count"]
    result = []
    for city in merged.values():
        total = city.pop("sum")
        city["avg_rating"] = total / city["rated"] if city["rated"] else None
        result.append(city)
    return sorted(result, key=lambda c: (-c["count"], str(c["city"]), str(c["state"])))


__all__ = [
    "BANDS",
    "band",
    "bands_of",
    "cities",
    "city_counts",
    "featured_by_industry",
    "filter_cities",
    "filter_clause",
    "rating_bands",
    "rating_counts",
    "rating_review_sample",
    "reviews_by_rating",
]
