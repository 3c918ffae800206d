"""Engine settings as the built-in connectors read them (``ctx.settings`` may be absent)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flowplane.connectors.base import NodeContext


def settings_value(ctx: NodeContext, name: str, default: Any) -> Any:
    """Return setting ``name`` from ``ctx.settings``, or ``default`` when missing."""
    value = getattr(ctx.settings, name, None) if ctx.settings is not None else None
    return default if value is None else value


def data_dir(ctx: NodeContext) -> Path:
    """Return the resolved data folder of the engine."""
    return Path(settings_value(ctx, "data_dir", Path("./flowplane-data"))).resolve()
