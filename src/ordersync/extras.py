"""The optional parts of ordersync and the libraries each one installs.

``pip install ordersync`` installs what syncing needs; the sandboxes (``serve``, ``demo``) and the dashboard are
extras. A command whose extra is missing says so in one line, naming what to install, instead of failing on an
import: :func:`missing_extra` turns the import error into that line, worded as :func:`ordersync.explain.line` words
a missing destination extra, and the command ends with the same status (1, ``EXIT_FAILED``: fix it by installing).
The destination extras need no command's help (each of their modules belongs to one extra): ``explain`` maps them.
"""

from __future__ import annotations

EXTRAS: dict[str, tuple[str, ...]] = {
    "sandbox": ("starlette", "uvicorn", "httptools", "uvloop", "faker"),
    "dashboard": ("starlette", "uvicorn", "jinja2"),
}
"""Each extra and the top-level modules it brings (as pyproject.toml lists them)."""


def missing_extra(exc: ImportError, extra: str, command: str) -> str | None:
    """The line to show when ``exc`` is a library of ``extra`` that is not installed; None when it is any other
    import error (a bug, to be reported as one)."""
    top = (exc.name or "").split(".")[0]
    if top not in EXTRAS[extra]:
        return None
    return (f"'ordersync {command}' needs the {extra} extra (module {top} is not installed): "
            f"pip install 'ordersync[{extra}]'")
