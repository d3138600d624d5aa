"""What ``ordersync status`` shows of a stream's state: the API's own description of its typed state."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ordersync import apis
from ordersync.apis.base import SourceSettings
from ordersync.model import State


def describe(settings: SourceSettings | None, stream: str, stored: State | None) -> dict[str, Any]:
    """The cursor(s) and the position of an unfinished run, as the source's API reads its state."""
    if not stored:
        return {}
    if settings is None:  # a source no longer configured: its API is unknown, show what is stored
        return {k: v for k, v in stored.items() if v not in (None, {}, []) and k not in ("run", "filters")}
    state_type = apis.get(settings.type).state
    if stored.get("version") != state_type.VERSION:
        return {"state": "from another version of ordersync (the next run reads everything again)"}
    try:
        return state_type.model_validate(stored).describe()
    except ValidationError:
        return {"state": "unreadable (the next run reads everything again)"}
