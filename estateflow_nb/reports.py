"""Reports: run a notebook headlessly with papermill and write it as self-contained HTML.

`run_report("verification", db=...)` executes `notebooks/02_verification_report.ipynb` on the
project's kernel with `interactive=False` and the given parameters, in `notebooks/` as JupyterLab
would (paths in parameters are made absolute first: see `targets.project_path`), saves the executed notebook as
`reports/verification-<UTC timestamp>.ipynb` and converts it to `reports/verification-<UTC
timestamp>.html`: code cells and prompts hidden, every figure embedded as a PNG, no script, style
or image fetched from the network.

Parameters are checked before anything runs: a name the notebook does not declare is refused, and
so is any name that says secret, token, password or key, because papermill writes every parameter
into the output notebook (secrets come from the environment inside the package, never from here).
A cell that fails stops the run with a one-line EstateFlowError naming the cell and the error; the
partial notebook stays beside where the HTML would have been.

The notebooks ship inside the package (a wheel has them in `estateflow_nb/notebooks/`; a checkout
keeps them in `notebooks/`), and the kernel named `estateflow` is registered for this interpreter the
first time a report needs it, so a plain `pip install` gives working reports.

Heavy imports (papermill, nbconvert) happen inside the functions: the `estateflow` command and
`import estateflow_nb` stay fast.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._look import visible
from ._time import compact_time
from .errors import EstateFlowError

if TYPE_CHECKING:
    import pandas as pd

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGE_ROOT = PACKAGE_DIR.parent
# A checkout: the package beside its pyproject.toml, the notebooks in notebooks/. An installed wheel:
# the notebooks inside the package.
CHECKOUT = (PACKAGE_ROOT / "pyproject.toml").is_file() and (PACKAGE_ROOT / "notebooks").is_dir()
NOTEBOOKS_DIR = PACKAGE_ROOT / "notebooks" if CHECKOUT else PACKAGE_DIR / "notebooks"
TEMPLATES_DIR = PACKAGE_DIR / "templates"
TEMPLATE_NAME = "estateflow_report"
KERNEL_NAME = "estateflow"
KERNEL_DISPLAY_NAME = "Python (estateflow)"
KERNEL_INSTALL = f"python -m ipykernel install --sys-prefix --name {KERNEL_NAME}"
# The kernel of the current interpreter that ipykernel offers under this name, when ours cannot be registered.
NATIVE_KERNEL = "python3"
# Cells tagged so are for a person at the notebook (introductions, the panels) and left out of reports.
HIDE_IN_REPORT_TAG = "hide-in-report"

# Report name -> notebook in notebooks/. One line per report.
REPORTS: dict[str, str] = {
    "ladder": "01_progressive_ladder.ipynb",
    "verification": "02_verification_report.ipynb",
    "explore": "03_explore_ratings_cities.ipynb",
    "rollback": "04_rollback_and_backups.ipynb",
}
# The reports that may create their database (they import); the others refuse a missing one.
CREATES_DATABASE = ("ladder",)
# Parameters that are paths (comma-separated for `files`): made absolute before the kernel starts.
PATH_PARAMETERS = ("directory", "file", "files", "backups_dir", "failures")
SECRET_WORDS = ("secret", "token", "password", "key")
_KINDS = {"bool": "true or false", "int": "a whole number", "float": "a number"}
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}

__all__ = [
    "KERNEL_NAME",
    "REPORTS",
    "ReportResult",
    "RunFacts",
    "check_parameters",
    "declared_defaults",
    "notebook_path",
    "report_kernel",
    "report_parameters",
    "run_report",
    "this_run",
    "to_html",
]


@dataclass
class ReportResult:
    name: str
    html: Path
    notebook: Path
    parameters: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def _repr_html_(self) -> str:
        from ._display import report_html

        return report_html(self)

    def to_frame(self) -> pd.DataFrame:
        """The report as one row: name, html and notebook (paths), seconds."""
        from ._frames import REPORT_COLUMNS, one_row

        return one_row(self, REPORT_COLUMNS)

    def __repr__(self) -> str:
        return f"<ReportResult {self.name}: {visible(str(self.html))} ({self.seconds:.1f} s)>"


def notebook_path(name: str) -> Path:
    """The notebook behind report `name`."""
    if name not in REPORTS:
        raise EstateFlowError(f"no report named {name!r}; choose one of {', '.join(REPORTS)}")
    path = NOTEBOOKS_DIR / REPORTS[name]
    if not path.exists():
        raise EstateFlowError(f"the {name} report's notebook {path} is missing from this checkout")
    return path


def report_parameters(name: str) -> dict[str, dict[str, Any]]:
    """The parameters the report's notebook declares: name -> {inferred_type_name, default, help}."""
    import papermill

    with _quiet_papermill():
        return dict(papermill.inspect_notebook(str(notebook_path(name))))


def declared_defaults(name: str) -> dict[str, Any]:
    """The parameters report `name`'s notebook declares, with their defaults, read from its parameters
    cell without papermill (so a kernel can ask cheaply)."""
    notebook = json.loads(notebook_path(name).read_text(encoding="utf-8"))
    cell = next(c for c in notebook["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    return {
        node.target.id: ast.literal_eval(node.value)
        for node in ast.parse(source).body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None
    }


@dataclass(frozen=True)
class RunFacts:
    """What a report was run with: its parameters, and the command that makes the same report again."""

    name: str
    parameters: dict[str, Any]
    command: str

    def parameters_text(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.parameters.items()) or "none"


def _as_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def this_run(name: str, namespace: Mapping[str, Any]) -> RunFacts:
    """The facts of report `name` as run with the parameter values in `namespace` (a notebook's
    globals): every declared parameter but `interactive`, and the `estateflow report` command with the
    database and the parameters that differ from their defaults."""
    from .targets import resolve_url

    defaults = declared_defaults(name)
    values = {k: namespace[k] for k in defaults if k in namespace and k != "interactive"}
    db = resolve_url(str(values.get("db") or "") or None)
    values["db"] = db
    words = ["estateflow", "report", name, "--db", db]
    for key, value in values.items():
        if key != "db" and value != defaults.get(key):
            words += ["-p", key, _as_text(value)]
    return RunFacts(name, values, shlex.join(words))


def _is_secret(name: str) -> bool:
    return any(word in name.casefold() for word in SECRET_WORDS)


def _coerce(name: str, value: Any, type_name: str) -> Any:
    """A value given as text on the command line, as the type the notebook declares."""
    if not isinstance(value, str) or type_name in ("str", "None"):
        return value
    text = value.strip()
    try:
        if type_name == "bool":
            if text.casefold() in _TRUE:
                return True
            if text.casefold() in _FALSE:
                return False
            raise ValueError(text)
        if type_name == "int":
            return int(text.replace(",", "").replace("_", ""))
        if type_name == "float":
            return float(text)
    except ValueError:
        raise EstateFlowError(f"parameter {name!r} takes {_KINDS[type_name]}, not {value!r}") from None
    return value


def check_parameters(name: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """`given` checked against the notebook's parameters and typed; `interactive` is always False.

    Refuses (EstateFlowError) secret-looking names, names the notebook does not declare, and
    `interactive` itself: reports run headless.
    """
    for key in given:
        if _is_secret(key):
            raise EstateFlowError(
                f"refused parameter {key!r}: secrets are never notebook parameters (papermill writes every"
                " parameter into the report); set them in the environment, e.g. CLOUDFLARE_API_TOKEN"
            )
    declared = report_parameters(name)
    for key in given:
        if key == "interactive":
            raise EstateFlowError("reports always run with interactive=False; leave 'interactive' out")
        if key not in declared:
            known = ", ".join(k for k in declared if k != "interactive")
            raise EstateFlowError(f"the {name} report has no parameter {key!r}; it takes: {known}")
    typed = {key: _coerce(key, value, str(declared[key]["inferred_type_name"])) for key, value in given.items()}
    return {**typed, "interactive": False}


@contextmanager
def _quiet_papermill() -> Iterator[None]:
    """Papermill logs warnings we have already dealt with (unknown parameters are refused first)."""
    logger = logging.getLogger("papermill")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextmanager
def _kernel_imports_this_package() -> Iterator[None]:
    """In a checkout, put it first on the kernel's path, so the notebook runs the same code as its
    caller (an installed package is found where it is installed)."""
    if not CHECKOUT:
        yield
        return
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), before) if p)
    try:
        yield
    finally:
        if before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = before


@contextmanager
def _sockets() -> Iterator[str]:
    """Where a report's kernel puts its sockets: a private folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="estateflow-kernel-") as folder:
        yield str(Path(folder) / "kernel")


def report_kernel() -> str:
    """The kernel reports run on: `estateflow`, registered for this interpreter (in its prefix) when it
    is not installed yet, or, where it cannot be, the current interpreter's own kernel."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    for name in (KERNEL_NAME, None, NATIVE_KERNEL):
        if name is None:
            try:
                from ipykernel.kernelspec import install

                install(kernel_name=KERNEL_NAME, display_name=KERNEL_DISPLAY_NAME, prefix=sys.prefix)
            except (ImportError, OSError):
                continue
            name = KERNEL_NAME
        try:
            KernelSpecManager().get_kernel_spec(name)
        except NoSuchKernel:
            continue
        return name
    raise EstateFlowError(f"no Jupyter kernel to run the report on: install ipykernel and run `{KERNEL_INSTALL}`")


def _check_database(db: str | None) -> None:
    """Refuse a database that is not there in one line, before a kernel starts."""
    from .targets import connect

    with connect(db):
        pass


def _absolute_paths(values: dict[str, Any]) -> dict[str, Any]:
    """`values` with the database URL resolved and every path parameter made absolute (from the
    project root), so that the kernel, which runs in notebooks/, finds what the caller meant."""
    from .targets import project_path, resolve_url

    done = dict(values)
    done["db"] = resolve_url(str(values.get("db") or "") or None)
    for key in PATH_PARAMETERS:
        value = done.get(key)
        if isinstance(value, str) and value.strip():
            parts = [part.strip() for part in value.split(",")] if key == "files" else [value.strip()]
            done[key] = ",".join(str(project_path(part)) for part in parts if part)
    return done


def _free_stem(out_dir: Path, name: str) -> Path:
    stamp = compact_time()
    stem = out_dir / f"{name}-{stamp}"
    number = 1
    while stem.with_suffix(".html").exists() or stem.with_suffix(".ipynb").exists():
        number += 1
        stem = out_dir / f"{name}-{stamp}-{number}"
    return stem


def _cell_name(source: str) -> str:
    """A cell's name: its first line (every code cell of ours opens with a comment saying what it does)."""
    first = next((line.strip() for line in source.splitlines() if line.strip()), "(empty cell)")
    return first.lstrip("# ").strip() or first


def run_report(
    name: str,
    *,
    db: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    out_dir: str | Path = "reports",
    cwd: str | Path | None = None,
    timeout: float | None = None,
) -> ReportResult:
    """Execute report `name`'s notebook headlessly and write `<out_dir>/<name>-<UTC timestamp>.html`.

    `db` sets the notebook's `db` parameter; `parameters` sets the others (text is converted to the
    declared type). Relative paths, the database's among them, are taken from the project root (see
    `targets.project_root`) and passed to the notebook absolute; it runs in `cwd` (default: the
    notebooks' folder, where JupyterLab runs them too). `timeout` limits each cell, in seconds. Raises
    EstateFlowError when a parameter is refused, no kernel can be found, or a cell fails (the message
    names the cell; the partial notebook is kept).
    """
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError
    from traitlets.config import Config

    given = dict(parameters or {})
    if db is not None:
        if "db" in given and given["db"] != db:
            raise EstateFlowError("the database is given twice (--db and -p db): give it once")
        given["db"] = db
    values = _absolute_paths(check_parameters(name, given))
    source = notebook_path(name)
    kernel = report_kernel()
    if name not in CREATES_DATABASE:
        _check_database(values["db"])
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    stem = _free_stem(out, name)
    executed, html = stem.with_suffix(".ipynb"), stem.with_suffix(".html")
    began = time.perf_counter()
    try:
        with _quiet_papermill(), _kernel_imports_this_package(), _sockets() as sockets:
            papermill.execute_notebook(
                str(source),
                str(executed),
                parameters=values,
                kernel_name=kernel,
                cwd=str(Path(cwd or NOTEBOOKS_DIR).resolve()),
                progress_bar=False,
                log_output=False,
                start_timeout=120,
                execution_timeout=timeout,
                # Local sockets, not TCP on localhost: nothing else on the machine can talk to the kernel.
                # Their names start in a folder of this run's own, so that kernels started at once never
                # share one (a relative name would be taken from the kernel's working folder).
                config=Config({"KernelManager": {"transport": "ipc", "ip": sockets}}),
            )
    except PapermillExecutionError as error:
        raise EstateFlowError(
            f"the {name} report stopped in cell In [{error.exec_count}] ({_cell_name(error.source)!r}):"
            f" {error.ename}: {error.evalue.strip().splitlines()[0] if error.evalue.strip() else ''}"
            f" (partial notebook: {executed})"
        ) from None
    except (CellTimeoutError, DeadKernelError, RuntimeError, TimeoutError) as error:  # the kernel failed
        raise EstateFlowError(
            f"the {name} report did not finish: {type(error).__name__}: {str(error).strip().splitlines()[0]}"
            f" (partial notebook, if any: {executed})"
        ) from None
    to_html(executed, html, title=f"EstateFlow {name} report")
    return ReportResult(name, html, executed, values, time.perf_counter() - began)


def to_html(notebook: str | Path, html: str | Path, *, title: str) -> Path:
    """Convert an executed notebook to self-contained HTML without code, prompts or stderr output."""
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    nb = nbformat.read(str(notebook), as_version=4)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type == "code":
            # Warnings and logging belong to the executed notebook, not to the report.
            cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr")]
    exporter = HTMLExporter(
        template_name=TEMPLATE_NAME,
        extra_template_basedirs=[str(TEMPLATES_DIR)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags={HIDE_IN_REPORT_TAG}), enabled=True)
    body, _resources = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    path = Path(html)
    path.write_text(body, encoding="utf-8")
    return path
