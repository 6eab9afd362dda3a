"""One table format for every benchmark: markdown on stdout, plus JSON and a PNG beside it."""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from learn.tables import format_table

__all__ = ["format_table", "write_report", "machine_info", "timed", "set_run_context",
           "output_name"]

#: how the benchmarks run in this process (``python -m benchmarks`` sets it): quick or full size,
#: and the device; encoded in every output file name so that runs do not overwrite each other
_CONTEXT: dict = {"quick": None, "device": None}


def set_run_context(*, quick: bool, device: str) -> None:
    """Record the run's size (``--quick``) and ``--device`` for :func:`output_name`."""
    _CONTEXT.update(quick=bool(quick), device=str(device))


def output_name(name: str, *, quick: bool | None = None, device: str | None = None) -> str:
    """``name`` with the mode and device: ``two_view`` → ``two_view_quick_cpu`` (``--quick``)
    or ``two_view_cpu`` (full size). ``quick``/``device`` default to :func:`set_run_context`'s;
    without either, ``name`` is returned as given. A trailing ``_quick`` already in ``name``
    counts as the mode."""
    quick = _CONTEXT["quick"] if quick is None else quick
    device = _CONTEXT["device"] if device is None else device
    if quick is None and device is None:
        return name
    if name.endswith("_quick"):
        name, quick = name[: -len("_quick")], True
    dev = "".join(ch if ch.isalnum() else "-" for ch in (device or "cpu"))
    return f"{name}{'_quick' if quick else ''}_{dev}"


def machine_info() -> dict:
    """What the figures were measured on."""
    import numba
    info = {"python": platform.python_version(), "machine": platform.machine(),
            "cpu_count": os.cpu_count(), "numba_threads": numba.get_num_threads(),
            "numpy": np.__version__, "date": time.strftime("%Y-%m-%d %H:%M")}
    try:
        import cv2
        info["opencv"] = cv2.__version__
    except ImportError:  # pragma: no cover
        pass
    return info


def timed(fn, *args, repeat: int = 1, **kwargs):
    """Run ``fn`` ``repeat`` times; returns ``(last result, median seconds)``."""
    times, out = [], None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        times.append(time.perf_counter() - t0)
    return out, float(np.median(times))


def write_report(name: str, rows: list[dict], out_dir, *, columns: list[str] | None = None,
                 title: str = "", notes: dict | None = None,
                 plot: tuple[str, str] | None = None) -> str:
    """Print and save a benchmark table.

    Writes ``out_dir/NAME.md``, ``out_dir/NAME.json`` (rows, notes, machine info, mode and
    device) and, with ``plot=(label_column, value_column)``, a horizontal bar chart
    ``out_dir/NAME.png``, each atomically; ``NAME`` is :func:`output_name` (``name`` with the
    mode and device, e.g. ``two_view_quick_cpu``). Returns the markdown.
    """
    from pose.io_atomic import atomic_path, atomic_write_text
    title = title or name
    name = output_name(name)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md = (f"### {title or name}\n\n" + format_table(rows, columns) + "\n")
    if notes:
        md += "\n" + "\n".join(f"- {k}: {v}" for k, v in notes.items()) + "\n"
    atomic_write_text(out_dir / f"{name}.md", md)
    clean = [{k: (float(v) if isinstance(v, (np.floating, np.integer)) else v) for k, v in r.items()}
             for r in rows]
    atomic_write_text(out_dir / f"{name}.json", json.dumps(
        {"name": name, "title": title, "rows": clean, "notes": notes or {},
         "quick": _CONTEXT["quick"], "device": _CONTEXT["device"],
         "machine": machine_info()}, indent=2, default=str))
    if plot is not None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        lab, val = plot
        pts = [(str(r.get(lab)), float(r[val])) for r in rows
               if isinstance(r.get(val), (int, float, np.number)) and np.isfinite(r[val])]
        if pts:
            fig, ax = plt.subplots(figsize=(7, 0.45 * len(pts) + 1.2))
            ax.barh([p[0] for p in pts][::-1], [p[1] for p in pts][::-1])
            ax.set_xlabel(val)
            ax.set_title(title or name)
            fig.tight_layout()
            with atomic_path(out_dir / f"{name}.png") as tmp:
                fig.savefig(tmp, dpi=100, format="png")
            plt.close(fig)
    print(md, flush=True)
    return md
