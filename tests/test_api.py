from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
import types

import estateflow_nb

from .conftest import ROOT

# Imported on first use only: the CLI and the import child process must not pay for them.
# Not imported by `import estateflow_nb` nor by the CLI's start: libraries that take a second, and the
# record generator, whose tables would cost every command (and every import's start) tens of ms.
HEAVY = (
    "matplotlib",
    "pandas",
    "ipywidgets",
    "IPython",
    "papermill",
    "nbconvert",
    "nbformat",
    "estateflow_nb.generate",
)


def test_all_is_complete_and_exists() -> None:
    public = {
        name
        for name, value in vars(estateflow_nb).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    # Lazy names are in __all__ before first use; once used, they are in the namespace like the rest.
    assert public | set(estateflow_nb._LAZY) == set(estateflow_nb.__all__)
    assert len(estateflow_nb.__all__) == len(set(estateflow_nb.__all__))
    for name in estateflow_nb.__all__:
        assert getattr(estateflow_nb, name) is not None
    assert estateflow_nb.run_report is estateflow_nb.reports.run_report


def test_all_names_every_public_class_and_function_of_the_modules_it_imports() -> None:
    """What `from estateflow_nb import ...` offers is what the public modules define: nothing public
    left out of `__all__`, and nothing private in it."""
    tree = ast.parse(inspect.getsource(estateflow_nb))
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
    }
    public_modules = sorted(name for name in imported if not name.startswith("_"))
    assert {"importer", "ladder", "rollback", "schema", "targets"} <= set(public_modules)
    defined = [
        f"{name}.{attribute}"
        for name in public_modules
        for attribute, value in vars(importlib.import_module(f"estateflow_nb.{name}")).items()
        if (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ == f"estateflow_nb.{name}"
        and not attribute.startswith("_")
    ]
    missing = [where for where in defined if where.split(".")[-1] not in estateflow_nb.__all__]
    assert missing == [], f"public but not in estateflow_nb.__all__: {missing}"
    assert [name for name in estateflow_nb.__all__ if name.startswith("_")] == []


def test_importing_the_package_and_the_cli_stays_light() -> None:
    code = f"import sys, estateflow_nb, estateflow_nb.cli; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)}, check=True
    )
    assert done.stdout.strip() == ""


def test_error_tree_is_documented() -> None:
    doc = estateflow_nb.errors.__doc__ or ""
    for name in estateflow_nb.__all__:
        value = getattr(estateflow_nb, name)
        if isinstance(value, type) and issubclass(value, estateflow_nb.EstateFlowError):
            assert name in doc, f"{name} is missing from the exception tree in errors.py"
