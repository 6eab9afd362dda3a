"""One run's output set in ``--out``: written whole or not at all.

A run writes every file into a private staging folder beside the outputs
(``OUT/.epigeo-staging-<pid>/``, each file itself atomic), then :func:`commit` swaps the set in
with Ctrl-C (SIGINT) deferred: the previous run's ``report.json`` goes first, then every file of
the same kind (:data:`RUN_OUTPUTS`) that this run does not produce is removed (stale outputs of
another mode), the new files are renamed in (same filesystem: ``os.replace``) and the new
``report.json`` comes last. ``report.json`` lists the SHA-256 of every file of the set, so
"``report.json`` exists and its hashes match" means "a complete set of one run". An interrupted
run leaves the previous complete set (or, interrupted during the swap, the new one).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import threading
from pathlib import Path

__all__ = ["RUN_OUTPUTS", "staging_folder", "commit", "file_digests", "deferred_sigint"]

#: the files an ``epigeo reconstruct`` run owns in ``--out`` (report.json last)
RUN_OUTPUTS = ("pseudo_labels.npz", "reconstruction.npz", "calibration.toml", "rig.png",
               "skeleton.png", "reprojection.png", "report.html", "report.json")
_PREFIX = ".epigeo-staging-"


@contextlib.contextmanager
def deferred_sigint():
    """Hold Ctrl-C (SIGINT) for the duration of the block, then raise ``KeyboardInterrupt`` if
    one arrived. Only in the main thread (signal handlers live there); a no-op elsewhere."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got = []
    old = signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
    if got:
        raise KeyboardInterrupt


@contextlib.contextmanager
def staging_folder(out):
    """A fresh private folder inside ``out`` for one run's files; removed on exit (after
    :func:`commit` it is empty). Leftover staging folders of killed runs are removed first."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob(_PREFIX + "*"):
        shutil.rmtree(old, ignore_errors=True)
    stage = out / f"{_PREFIX}{os.getpid()}"
    stage.mkdir()
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def file_digests(folder, names) -> dict:
    """``{name: sha256 hex}`` of the files ``names`` in ``folder``."""
    out = {}
    for n in names:
        h = hashlib.sha256()
        with open(Path(folder) / n, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        out[n] = h.hexdigest()
    return out


def _fsync_dir(path):
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def commit(stage, out, kinds=RUN_OUTPUTS) -> tuple[list[Path], list[str]]:
    """Swap the files of ``stage`` into ``out`` (module docstring); returns ``(the final paths,
    the names of stale files of ``kinds`` removed because this run does not produce them)``."""
    stage, out = Path(stage), Path(out)
    new = sorted(p.name for p in stage.iterdir() if p.is_file())
    if "report.json" in new:
        new.remove("report.json")
        new.append("report.json")
    with deferred_sigint():
        stale = [n for n in kinds if n not in new and (out / n).exists()]
        with contextlib.suppress(FileNotFoundError):
            (out / "report.json").unlink()
        for n in stale:
            with contextlib.suppress(FileNotFoundError):
                (out / n).unlink()
        for n in new:
            os.replace(stage / n, out / n)
        _fsync_dir(out)
    return [out / n for n in new], [n for n in stale if n != "report.json"]
