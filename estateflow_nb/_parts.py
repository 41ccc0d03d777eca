"""How much one request carries: a batch split into parts that each fit the target's time limit.

D1 answers every request within 30 seconds or not at all ("this also applies to the entire batch
call"). A `Sizer` aims each request at a quarter of the target's `Limits.max_query_seconds`, from
what the target says the last one took (`ExecuteResult.server_seconds`); when the target gives up
on a request because of its size (`TooLargeError`), the same work goes again in halves, and the size
grows back by half again per request that fits. A target without a time limit (SQLite) gets each
batch whole. `Parts` cuts a batch at record boundaries, so that each part has its own checkpoint and
its own rejects.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._batches import Batch

# The share of the target's per-request time limit a request aims at: far enough below it that a
# slower moment of the service does not push a request over.
AIM = 0.25
GROWTH = 1.5


class Sizer:
    """Records per request: `size`, adjusted after each request."""

    def __init__(self, batch_size: int, limit_seconds: float | None) -> None:
        self.most = batch_size
        self.limit = limit_seconds
        self.size = batch_size

    def fitted(self, records: int, seconds: float | None) -> None:
        """A request of `records` records took `seconds` on the target (None: it did not say)."""
        if self.limit is None:
            return
        goal = self.most
        if seconds is not None and seconds > 0:
            goal = min(goal, max(1, int(records * self.limit * AIM / seconds)))
        if goal > self.size:
            goal = min(goal, int(self.size * GROWTH) + 1)  # back up gradually after a halving
        self.size = goal

    def too_large(self, records: int) -> bool:
        """The target refused a request of `records` records for its size: halve. False when a single
        record is already too large, and there is nothing smaller to send."""
        if records <= 1:
            return False
        self.size = max(1, records // 2)
        return True


@dataclass
class Parts:
    """The records of `batch` not yet committed, handed out from the front in parts of any size."""

    batch: Batch

    def __post_init__(self) -> None:
        start = self.batch.end - self.batch.records
        rejected = {number for number, _, _ in self.batch.rejects}
        # Each row's record number: the numbers of the batch that were not rejected, in order.
        self.numbers = [n for n in range(start + 1, self.batch.end + 1) if n not in rejected]
        self.done = start
        self._row = 0
        self._reject = 0

    @property
    def left(self) -> int:
        return self.batch.end - self.done

    def take(self, records: int) -> Batch:
        """The next `records` records (or what is left) as a batch of its own; nothing is consumed
        until `commit`."""
        end = min(self.batch.end, self.done + records)
        if end == self.batch.end and self.done == self.batch.end - self.batch.records:
            return self.batch
        rows = self._row
        while rows < len(self.numbers) and self.numbers[rows] <= end:
            rows += 1
        rejects = self._reject
        while rejects < len(self.batch.rejects) and self.batch.rejects[rejects][0] <= end:
            rejects += 1
        return Batch(
            self.batch.rows[self._row : rows],
            self.batch.licenses[self._row : rows],
            self.batch.rejects[self._reject : rejects],
            end,
            rendered=self.batch.rendered,
        )

    def commit(self, part: Batch) -> None:
        self._row += len(part.rows)
        self._reject += len(part.rejects)
        self.done = part.end
