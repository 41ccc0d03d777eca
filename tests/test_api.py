from __future__ import annotations

import types

import estateflow_nb


def test_all_is_complete_and_exists() -> None:
    public = {
        name
        for name, value in vars(estateflow_nb).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(estateflow_nb.__all__)
    assert len(estateflow_nb.__all__) == len(set(estateflow_nb.__all__))


def test_error_tree_is_documented() -> None:
    doc = estateflow_nb.errors.__doc__ or ""
    for name in estateflow_nb.__all__:
        value = getattr(estateflow_nb, name)
        if isinstance(value, type) and issubclass(value, estateflow_nb.EstateFlowError):
            assert name in doc, f"{name} is missing from the exception tree in errors.py"
