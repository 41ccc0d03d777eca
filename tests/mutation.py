"""Mutation testing of the engine with mutmut 3 (issue 14): one run over the modules asked for, a score per module.

    python tests/mutation.py run [MODULE ...]     mutmut on those modules (all when none), then the table
    python tests/mutation.py retest [MODULE ...]  only the last run's survivors again (after new tests)
    python tests/mutation.py report [MODULE ...]  the table from the last run's results in mutants/
    python tests/mutation.py survivors MODULE     each survivor's diff, with an entry ready for the
                                                  equivalents file if it truly cannot change behaviour

`make mutation MODULE=verify` is the first; settings (which files, which tests) are in pyproject.toml's
[tool.mutmut]. Score = killed / (mutants - equivalent): a mutant recorded as equivalent leaves the
count, it does not count as killed. A timeout counts as killed (the tests did not pass); a mutant in a
function no selected test reaches ("untested") counts as survived.

All the modules named go to one mutmut run. Each mutant is tried against the tests of its module's
JUDGES that reach its function, quickest first; a mutant listed as equivalent runs no test (it would
survive them all, at the cost of all of them); each mutant's CPU time goes to mutants/mutant-cpu.jsonl
(tests/conftest.py does these).

Equivalent mutants are listed in tests/mutation_equivalents.toml. mutmut's own names
(`estateflow_nb.rungs.x_check__mutmut_7`) number the mutants of a function in order, so one edit
higher up in a function renumbers every mutant below it; an entry is keyed instead by the function's
name and the mutated lines' text before and after (from mutmut's diff, stripped of indentation), which
stays the same until that line itself changes, and then the entry ought to be looked at again anyway.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENTS = ROOT / "tests" / "mutation_equivalents.toml"
TIMES = ROOT / "mutants" / "mutation-times.json"
MIN_SCORE = 85.0
# The modules of issue 14, each with the private modules that hold its logic. Kept in step with
# [tool.mutmut] only_mutate in pyproject.toml (checked on every run).
MODULES: dict[str, tuple[str, ...]] = {
    "schema": ("schema.py",),
    "sources": ("sources.py", "_dump_grammar.py"),
    "importer": ("importer.py", "_retry.py", "_rejects.py"),
    "batches": ("_batches.py", "_text_records.py"),
    "verify": ("verify.py", "_checks.py", "_evidence.py"),
    "rollback": ("rollback.py", "_rollback_sql.py", "_rollback_run.py"),
    "backup": ("backup.py", "_backup_checks.py"),
    "quota": ("quota.py",),
    "rungs": ("rungs.py",),
    "ladder": ("ladder.py",),
    "targets": ("_sql.py", "targets/d1/_sql.py"),
}
# The test files that judge a module's mutants, where not every selected test: a mutant that survives
# runs every test that reaches its function, and nearly every test imports records, so a mutant of
# the record rules or the importer cost tests worth 10-15 s, of which its own files hold 2-3 s. A
# module not listed here is judged by every selected test. (tests/conftest.py applies the list, finding
# the module from the mutant's name with `judges_of`.)
JUDGES: dict[str, tuple[str, ...]] = {
    "schema": ("test_schema", "test_values", "test_batches", "test_importer"),
    "sources": ("test_sources", "test_hostile_dumps", "test_values", "test_climb", "test_batches"),
    "importer": (
        "test_importer",
        "test_claims",
        "test_batches",
        "test_values",
        "test_partial_requests",
        "test_climb",
        "test_deferred_indexes",
        "test_d1",
    ),
    "batches": ("test_text_records", "test_batches", "test_importer", "test_climb"),
    "verify": ("test_verify",),
    "rollback": ("test_rollback", "test_rollback_plan", "test_partial_requests", "test_claims"),
    "backup": ("test_backup", "test_restore_checks", "test_rollback"),
    "quota": ("test_quota", "test_targets", "test_importer"),
    "rungs": ("test_ladder", "test_importer"),
    "ladder": ("test_ladder", "test_climb"),
    # The quoting and D1's statement building: their own tests, and those of what builds SQL with them.
    "targets": (
        "test_targets",
        "test_d1",
        "test_d1_contract",
        "test_schema",
        "test_sources",
        "test_hostile_dumps",
        "test_verify",
        "test_backup",
        "test_restore_checks",
        "test_migrations",
    ),
}
KILLED = {"killed", "timeout", "segfault", "caught by type check"}
# mutmut's exit-code meanings (mutmut/stats.py); anything else is "suspicious".
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "untested", 33: "untested", 34: "skipped", 36: "timeout"}
STATUS |= {37: "caught by type check", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout"}
STATUS |= {-11: "segfault", -9: "segfault", 2: "interrupted"}


# What an equivalents entry names: (function, original lines, mutated lines); see the docstring.
Key = tuple[str, str, str]


@dataclass(frozen=True)
class Mutant:
    name: str  # mutmut's: estateflow_nb.rungs.x_check__mutmut_7
    path: str  # estateflow_nb/rungs.py
    status: str
    seconds: float  # how long its tests ran (0 when not run)

    @property
    def function(self) -> str:
        return self.name.partition("__mutmut_")[0]


def mutant_name_prefix(path: str) -> str:
    return "estateflow_nb." + path.removesuffix(".py").replace("/", ".") + "."


def module_of(mutant_name: str) -> str | None:
    """The module of issue 14 a mutant belongs to, from mutmut's name for it."""
    for module, files in MODULES.items():
        if mutant_name.startswith(tuple(mutant_name_prefix(file) for file in files)):
            return module
    return None


def known_equivalent(mutant_name: str) -> bool:
    """Whether a mutant is listed in the equivalents file, found by its diff as `key` finds it. Called
    under `make mutation` (tests/conftest.py) in the process of the mutant, whose tests are then not
    run: an equivalent mutant survives every test that reaches it, so it costs all of them each run."""
    known = equivalents()
    function = mutant_name.partition("__mutmut_")[0]
    if not any(entry[0] == function for entry in known):
        return False
    module = module_of(mutant_name)
    files = [f for f in MODULES[module] if mutant_name.startswith(mutant_name_prefix(f))] if module else []
    if not files:
        return False
    path = f"estateflow_nb/{max(files, key=len)}"
    with contextlib.chdir(ROOT.parent if ROOT.name == "mutants" else ROOT):  # mutmut reads mutants/<path>
        return key(Mutant(mutant_name, path, "not run", 0.0)) in known


def judges_of(mutant_name: str) -> tuple[str, ...] | None:
    """The test files that judge a mutant (names without .py), or None when every selected test does."""
    module = module_of(mutant_name)
    return JUDGES.get(module) if module is not None else None


def mutants(module: str) -> list[Mutant]:
    """The mutants of one module from the last run's result files (mutants/<path>.meta)."""
    found = []
    for path in (f"estateflow_nb/{file}" for file in MODULES[module]):
        meta = ROOT / "mutants" / f"{path}.meta"
        if not meta.exists():
            continue
        data = json.loads(meta.read_text())
        codes: dict[str, int | None] = data["exit_code_by_key"]
        durations: dict[str, float] = data.get("durations_by_key", {})
        for name, code in codes.items():
            status = "not run" if code is None else STATUS.get(code, "suspicious")
            found.append(Mutant(name, path, status, durations.get(name, 0.0)))
    return found


def diff(mutant: Mutant) -> str:
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    return get_diff_for_mutant(mutant.name, path=mutant.path)


def key(mutant: Mutant) -> Key:
    """(function, original lines, mutated lines): what an equivalents entry names; see the docstring."""
    lines = diff(mutant).splitlines()[2:]  # past the ---/+++ header
    before = "\n".join(line[1:].strip() for line in lines if line.startswith("-"))
    after = "\n".join(line[1:].strip() for line in lines if line.startswith("+"))
    return mutant.function, before, after


def equivalents() -> dict[Key, str]:
    entries = tomllib.loads(EQUIVALENTS.read_text()).get("equivalent", []) if EQUIVALENTS.exists() else []
    return {(e["function"], e["original"], e["mutant"]): e["reason"] for e in entries}


@dataclass
class Row:
    module: str
    total: int
    killed: int
    equivalent: int
    survived: int
    untested: int
    not_run: int
    seconds: float  # the sum of its mutants' times: a worker's time, so about twice the wall time on 2

    @property
    def score(self) -> float:
        counted = self.total - self.equivalent
        return 100.0 * self.killed / counted if counted else 100.0


def tally(module: str, known: dict[Key, str]) -> tuple[Row, list[Mutant], set[Key]]:
    """The module's row, its survivors that are not known equivalents, and the known ones it matched."""
    found = mutants(module)
    statuses = Counter(m.status for m in found)
    killed = sum(n for status, n in statuses.items() if status in KILLED)
    survivors = {m: key(m) for m in found if m.status not in KILLED and m.status != "not run"}
    matched = {k for k in survivors.values() if k in known}
    left = [m for m, k in survivors.items() if k not in known]
    equivalent = len(survivors) - len(left)
    # A mutant listed as equivalent runs no test, so mutmut calls it untested: only the others count here.
    untested, not_run = sum(m.status == "untested" for m in left), statuses["not run"]
    seconds = sum(m.seconds for m in found)
    row = Row(module, len(found), killed, equivalent, len(left), untested, not_run, seconds)
    return row, left, matched


def table(names: list[str]) -> bool:
    """Print the per-module table; True when every module reaches MIN_SCORE."""
    known = equivalents()
    line = "{:<10} {:>7} {:>7} {:>6} {:>8} {:>8} {:>7}  {}".format
    print(line("module", "mutants", "killed", "equiv", "survived", "untested", "score", "mutant s"))
    ok, matched = True, set()
    for name in names:
        row, _, used = tally(name, known)
        matched |= used
        wall = f"{row.seconds:.0f} s"
        score = f"{row.score:.1f}%" if not row.not_run else f"{row.not_run} not run"
        print(line(name, row.total, row.killed, row.equivalent, row.survived, row.untested, score, wall))
        ok = ok and row.total > 0 and not row.not_run and row.score >= MIN_SCORE
    print(f"score = killed / (mutants - equivalent); survived includes untested; goal {MIN_SCORE:.0f}% per module")
    print("mutant s: the time its mutants' tests took, each mutant's last run (2 run at once: wall is about half)")
    times: dict[str, float] = json.loads(TIMES.read_text()) if TIMES.exists() else {}
    for run_names, seconds in times.items():
        print(f"wall time of the last whole run of {run_names}: {seconds:.0f} s")
    # An entry no survivor matches: its mutant is killed now, or its line changed. Either way, look again.
    prefixes = tuple(mutant_name_prefix(file) for name in names for file in MODULES[name])
    for stale in sorted(k for k in known.keys() - matched if k[0].startswith(prefixes)):
        print(f"{EQUIVALENTS.name}: no surviving mutant matches {stale[0]}: {stale[1]!r} -> {stale[2]!r}")
    return ok


def survivors(name: str) -> None:
    known = equivalents()
    _, left, _ = tally(name, known)
    for mutant in left:
        function, before, after = key(mutant)
        print(f"# {mutant.name}: {mutant.status}\n{diff(mutant)}")
        entry = {"function": function, "original": before, "mutant": after}
        print("[[equivalent]]", *(f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in entry.items()), sep="\n")
        print('reason = ""\n')


def check_config() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    listed = {f"estateflow_nb/{file}" for files in MODULES.values() for file in files}
    if set(config["only_mutate"]) != listed:
        sys.exit(f"pyproject.toml [tool.mutmut] only_mutate differs from MODULES in {__file__}")


def run(names: list[str], *, retest: bool = False) -> bool:
    """One mutmut run over the named modules' mutants (or, with `retest`, over their survivors of the
    last run that are not known equivalents: the quick check of new tests). One run, not one per
    module: each run of mutmut lists the tests, runs them all once unmutated and forks its workers
    again, and the judges of a mutant are found from its name (tests/conftest.py), not from the run.
    Which tests reach which function is collected once and cached in mutants/ until the tests change."""
    check_config()
    patterns: list[str] = []
    if retest:
        # mutmut stops on a mutant named outright whose function no test reaches: those wait.
        stats = json.loads((ROOT / "mutants" / "mutmut-stats.json").read_text())
        reached = stats["tests_by_mangled_function_name"]
        for name in names:
            patterns += [m.name for m in tally(name, equivalents())[1] if m.function in reached]
        if not patterns:
            return table(names)
    else:
        patterns = [mutant_name_prefix(file) + "*" for name in names for file in MODULES[name]]
    mutmut = Path(sys.executable).with_name("mutmut")
    start = time.monotonic()
    done = subprocess.run([str(mutmut), "run", "--max-children", "2", *patterns], cwd=ROOT, check=False)
    if done.returncode != 0:
        sys.exit(f"mutmut stopped (exit {done.returncode})")
    seconds = time.monotonic() - start
    print(f"mutmut's run over {' '.join(names)}: {seconds:.0f} s of wall time")
    if not retest:  # the whole run's wall time, for the table
        times: dict[str, float] = json.loads(TIMES.read_text()) if TIMES.exists() else {}
        times[" ".join(names)] = seconds
        TIMES.write_text(json.dumps(times, indent=1))
    return table(names)


def main(argv: list[str]) -> int:
    command, *names = argv or ["report"]
    unknown = sorted(set(names) - set(MODULES))
    if unknown or command not in ("run", "retest", "report", "survivors"):
        print(__doc__.split("\n\n")[1], f"modules: {' '.join(MODULES)}", sep="\n", file=sys.stderr)
        return 2
    os.chdir(ROOT)  # mutmut's helpers read mutants/ relative to here
    if command == "survivors":
        for name in names:
            survivors(name)
        return 0
    if command in ("run", "retest"):
        ok = run(names or list(MODULES), retest=command == "retest")
    else:
        ok = table(names or list(MODULES))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
