"""Questions an analyst asks beyond verification: ratings by profession and place, ratings against
review counts, where the professionals are and who is featured.

Plain SQL that runs on SQLite and D1 alike. Everything is aggregated in the database, so the answers
stay a few hundred rows on any table size (D1 caps what one query may return); the one exception,
`rating_review_sample`, reads an even sample of a bounded size. Plots and widgets take these rows
as they are; `filter_cities` narrows the city rows without another query, for a search box.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .targets import Target


def rating_counts(target: Target) -> list[dict[str, Any]]:
    """Professionals per industry, state and rating: the exact shape of the ratings (for box plots)."""
    return target.query(
        "SELECT industry, state, rating, COUNT(*) AS count FROM professionals WHERE rating IS NOT NULL"
        " GROUP BY industry, state, rating ORDER BY industry, state, rating"
    )


def reviews_by_rating(target: Target) -> list[dict[str, Any]]:
    """Per rating value: how many professionals hold it and their mean and largest review count."""
    return target.query(
        "SELECT rating, COUNT(*) AS count, ROUND(AVG(review_count), 1) AS mean_reviews,"
        " MAX(review_count) AS max_reviews FROM professionals WHERE rating IS NOT NULL"
        " GROUP BY rating ORDER BY rating"
    )


def rating_review_sample(target: Target, size: int = 2000) -> list[dict[str, Any]]:
    """About `size` professionals spread evenly over the table (every k-th id): rating, reviews, industry."""
    total = int(target.scalar("SELECT COUNT(*) FROM professionals") or 0)
    step = max(1, total // max(1, size))
    return target.query(
        "SELECT id, rating, review_count, industry FROM professionals"
        " WHERE rating IS NOT NULL AND id % ? = 0 ORDER BY id LIMIT ?",
        (step, size),
    )


def city_counts(target: Target) -> list[dict[str, Any]]:
    """Professionals, featured professionals, mean rating (of `rated` ratings) per city, state and industry."""
    return target.query(
        "SELECT city, state, industry, COUNT(*) AS count, SUM(is_featured = 1) AS featured,"
        " AVG(rating) AS avg_rating, COUNT(rating) AS rated FROM professionals GROUP BY city, state, industry"
        " ORDER BY city, state, industry"
    )


def featured_by_industry(target: Target) -> list[dict[str, Any]]:
    """Professionals and featured professionals per industry, most professionals first."""
    return target.query(
        "SELECT industry, COUNT(*) AS count, SUM(is_featured = 1) AS featured FROM professionals"
        " GROUP BY industry ORDER BY count DESC, industry"
    )


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
    "cities",
    "city_counts",
    "featured_by_industry",
    "filter_cities",
    "rating_counts",
    "rating_review_sample",
    "reviews_by_rating",
]
