"""Markdown tables of result rows, shared by ``epigeo demo`` and ``python -m benchmarks``."""
from __future__ import annotations

import numpy as np

__all__ = ["format_table", "format_value"]


def format_value(v) -> str:
    """A table cell: floats to 3 significant figures (thousands separated, tiny ones in
    scientific notation, non-finite as an em dash), anything else as ``str``."""
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return "—"
        a = abs(v)
        if a >= 1000:
            return f"{v:,.0f}"
        if a >= 10:
            return f"{v:.1f}"
        if a >= 0.01 or a == 0:
            return f"{v:.3g}" if a < 1 else f"{v:.2f}"
        return f"{v:.2e}"
    return str(v)


def format_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """Markdown table of ``rows`` (dicts) with ``columns`` (default: keys of the first row)."""
    if not rows:
        return "(no rows)"
    columns = columns or list(rows[0])
    out = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for r in rows:
        out.append("| " + " | ".join(format_value(r.get(c, "")) for c in columns) + " |")
    return "\n".join(out)
