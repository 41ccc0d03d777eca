"""The one way a destructive or large step is confirmed: `yes`, or a person's answer, or a refusal."""

from __future__ import annotations

from collections.abc import Callable

from .errors import ConfirmationRequired

Confirm = Callable[[str], bool]


def require_confirmation(
    question: str, refusal: str, *, yes: bool = False, confirm: Confirm | None = None, flag: str = "--yes"
) -> None:
    """Return when `yes` is set or `confirm(question)` (a terminal prompt, a widget) answers True;
    otherwise raise ConfirmationRequired with `refusal`, saying how to confirm."""
    if yes or (confirm is not None and confirm(question)):
        return
    raise ConfirmationRequired(f"{refusal}: confirm interactively or pass {flag}", flag=flag)
