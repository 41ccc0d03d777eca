"""A D1 backup ends exact with the local engine misbehaving as the REST contract allows (issue 10):
batches run item by item (non-atomic), and one request's answer lost after D1 did the work.

The imports and rollbacks are shown exact under these modes in tests/test_partial_requests.py; this
is the backup's share. The backup file must hold exactly the database's rows and ledger: a lost
answer sent again must neither drop a page nor repeat one, and an export whose answer was lost must
still come down whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from estateflow_nb import _retry, backup, generate_records, import_file
from estateflow_nb.targets.d1 import D1Target, _dump

from .conftest import write_csv
from .d1_fixtures import FaultyTransport, LocalD1Engine
from .d1_modes import Modes
from .test_d1_backup_restore import everything, loaded

# Pages of 100 rows (the fallback's are 2,000): professionals' 250 rows take three, no other table two.
PAGE = 100
ROWS = 250


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_retry, "SLEEP", lambda seconds: None)


def filled(target: D1Target, tmp_path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Two imports (the second updates 20 rows, so before-images too), written item by item; every
    row of every table, as the backup must hold them."""
    records = list(generate_records(ROWS, seed=41))
    import_file(target, write_csv(tmp_path / "a.csv", records[:230]), batch_size=100)
    changed = [{**r, "city": "Key West"} for r in records[:20]] + records[230:]
    import_file(target, write_csv(tmp_path / "b.csv", changed), batch_size=100, on_conflict="update")
    return everything(target)


# Where the answer is lost: the first page of the first table paged out, or professionals' second
# page (the first "rowid >" there is: no other table has more than one page).
@pytest.mark.parametrize("match", ["ORDER BY rowid LIMIT", "WHERE rowid > "], ids=["first page", "a later page"])
def test_a_paged_backup_ends_exact_when_a_pages_answer_is_lost(
    d1_url: str,
    engine_modes: Modes,
    d1_engine: LocalD1Engine,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    match: str,
) -> None:
    monkeypatch.setattr(_dump, "DUMP_PAGE_ROWS", PAGE)
    with D1Target.from_url(d1_url, ensure_schema=True, create=True) as target:
        engine_modes.set(atomic=False)
        expected = filled(target, tmp_path)
        assert len(expected["professionals"]) == ROWS and len(expected["ef_before_images"]) == 20
        d1_engine.service(export={"available": False})
        engine_modes.set(atomic=False, faults=[{"match": match, "reads": True}])
        path = backup(target, backups_dir=tmp_path / "kept")
        assert target.last_copy is not None and target.last_copy.how == "paged"
    modes = engine_modes.now()
    assert modes["lost"] == 1 and modes["faults"] == []  # the answer was lost, and sent for again
    assert loaded(path) == expected


# The start of the export, or the poll that finds it complete: D1 did the work, the answer is lost.
@pytest.mark.parametrize("which", [1, 2], ids=["the export's start", "the poll that completes it"])
def test_an_exported_backup_ends_exact_when_an_exports_answer_is_lost(
    d1_engine: LocalD1Engine, d1_url: str, engine_modes: Modes, tmp_path: Path, which: int
) -> None:
    transport = FaultyTransport({which: ("after", httpx.ReadTimeout)}, match='"output_format"')
    with D1Target.from_url(d1_url, transport=transport, ensure_schema=True, create=True) as target:
        engine_modes.set(atomic=False)
        expected = filled(target, tmp_path)
        path = backup(target, backups_dir=tmp_path / "kept")
        assert target.last_copy is not None and target.last_copy.how == "export"
    assert transport.seen >= 3 and len(transport.forwarded) == transport.seen  # the lost one reached D1
    assert loaded(path) == expected
