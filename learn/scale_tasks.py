"""The tasks of :mod:`learn.scale`: one session's calibration, per-trial labelling and finishing
steps (run in a worker process, or one after the other by :func:`run_session`), the staging
folder and its rename, and the check that stored outputs are complete and current."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import time
from pathlib import Path

__all__ = ["run_session", "submit_sessions", "outputs_complete", "session_fingerprint"]


def session_fingerprint(session) -> dict:
    """``{"files", "bytes", "mtime_ns"}`` of every file under ``session``: a changed, added or
    removed input file changes it."""
    n = size = newest = 0
    for root, dirs, files in os.walk(session):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in files:
            st = os.stat(os.path.join(root, f))
            n, size, newest = n + 1, size + st.st_size, max(newest, st.st_mtime_ns)
    return {"files": n, "bytes": size, "mtime_ns": newest}


def _options_key(options: dict) -> dict:
    """``options`` as stored in ``scale.json`` (JSON types; a calibration file by its hash)."""
    key = json.loads(json.dumps({k: options[k] for k in sorted(options) if k != "quiet"},
                                default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))
    if options.get("calib"):
        key["calib_sha1"] = hashlib.sha1(Path(options["calib"]).read_bytes()).hexdigest()
    return key


def outputs_complete(session, dest, options: dict) -> tuple[bool, int]:
    """Whether ``dest`` holds the complete, valid outputs of ``session`` made with ``options``
    from the session's current files; returns ``(complete, frames)``. Every file is opened:
    ``scale.json`` (same fingerprint and options), ``session_report.json``,
    ``calibration.toml`` and each labelled trial's ``pseudo_labels.npz`` and ``report.json``."""
    import pose
    from .label_files import load_pseudo_labels

    dest = Path(dest)
    try:
        manifest = json.loads((dest / "scale.json").read_text())
        report = json.loads((dest / "session_report.json").read_text())
        if manifest.get("session") != str(Path(session).resolve()) or \
                manifest.get("options") != _options_key(options) or \
                manifest.get("fingerprint") != session_fingerprint(session):
            return False, 0
        pose.read_calibration_toml(dest / "calibration.toml")
        for trial in report["trials"]:            # the trials that were read and labelled
            load_pseudo_labels(dest / trial / "pseudo_labels.npz")
            json.loads((dest / trial / "report.json").read_text())
        return True, int(report["frames"])
    except (OSError, ValueError, KeyError, TypeError):
        return False, 0


def _swap_in(staging: Path, dest: Path) -> None:
    """Rename the finished ``staging`` folder onto ``dest`` (an old ``dest`` is moved aside
    first and then deleted)."""
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
    if dest.exists():
        os.replace(dest, old)
    os.replace(staging, dest)
    shutil.rmtree(old, ignore_errors=True)


def _staging(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.partial")


def _calibrate_task(session, dest, options: dict, overwrite: bool) -> dict:
    """Task 1 of a session: skip it when complete outputs are there; else (re)create the staging
    folder, read every trial and calibrate (:func:`learn.session.calibrate_session_folder`)."""
    from .session import calibrate_session_folder
    t0, c0 = time.perf_counter(), time.process_time()
    session, dest = Path(session), Path(dest)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    if not overwrite:
        done, frames = outputs_complete(session, dest, options)
        if done:
            return {"status": "skipped", "frames": frames, "seconds": time.perf_counter() - t0,
                    "cpu_seconds": time.process_time() - c0, "worker": worker}
    if not session.is_dir():
        raise ValueError(f"SESSION: {session} is not a folder")
    staging = _staging(dest)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        fingerprint = session_fingerprint(session)
        cs = calibrate_session_folder(session, staging, **options)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {"status": "calibrated", "calibrated": cs, "fingerprint": fingerprint,
            "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
            "worker": worker}


def _label_task(cal: dict, i: int, dest, options: dict) -> dict | None:
    """Task 2 of a session, one per trial: label trial ``i`` into the staging folder
    (:func:`learn.session.label_trial`; idempotent, so a retried task is harmless)."""
    if cal["status"] == "skipped":
        return None
    from .session import label_trial
    t0, c0 = time.perf_counter(), time.process_time()
    cs = cal["calibrated"]
    r = label_trial(_staging(Path(dest)), cs.report["trials"][i], cs.trial_paths[i], cs.xs[i],
                    cs.confs[i], cs.cameras, cs.report["per_trial"][i],
                    skeleton=cs.skeletons[i], min_confidence=options.get("min_confidence", 0.3))
    return {"labelled": r, "seconds": time.perf_counter() - t0,
            "cpu_seconds": time.process_time() - c0}


def _finish_task(cal: dict, session, dest, options: dict, *labelled) -> dict:
    """Task 3 of a session: the session report, ``scale.json`` last, then the staging folder is
    renamed onto ``dest``. Returns the session's result (see :func:`run_session`)."""
    from pose.io_atomic import atomic_write_text
    from .session import finish_session
    if cal["status"] == "skipped":
        return {**cal, "trials_skipped": 0, "skipped_trials": {}}
    t0, c0 = time.perf_counter(), time.process_time()
    session, dest = Path(session), Path(dest)
    staging = _staging(dest)
    report = finish_session(staging, cal["calibrated"].report, [r["labelled"] for r in labelled],
                            sum(r["seconds"] for r in labelled))
    atomic_write_text(staging / "scale.json", json.dumps(
        {"session": str(session.resolve()), "fingerprint": cal["fingerprint"],
         "options": _options_key(options), "frames": int(report["frames"])}, indent=1))
    _swap_in(staging, dest)
    failed = dict(report.get("failed", {}))
    return {"status": "done", "frames": int(report["frames"]),
            "seconds": cal["seconds"] + sum(r["seconds"] for r in labelled)
            + time.perf_counter() - t0,
            "cpu_seconds": cal["cpu_seconds"] + sum(r["cpu_seconds"] for r in labelled)
            + time.process_time() - c0,
            "trials_skipped": len(failed), "skipped_trials": failed, "worker": cal["worker"]}


def run_session(session, dest, options: dict, overwrite: bool = False) -> dict:
    """Label ``session`` into ``dest`` in this process, unless complete outputs are there already.

    The same three steps the cluster runs as separate tasks: read + calibrate
    (:func:`learn.session.calibrate_session_folder`) into the staging folder
    ``dest.parent/.<dest.name>.partial`` (a leftover one from a killed run is deleted first),
    label each trial, then the session report and ``scale.json`` last, and the staging folder
    is renamed onto ``dest``. Returns ``{"status", "frames", "seconds", "cpu_seconds",
    "trials_skipped", "skipped_trials", "worker"}``; errors propagate (the staging folder is
    removed)."""
    cal = _calibrate_task(session, dest, options, overwrite)
    if cal["status"] == "skipped":
        return _finish_task(cal, session, dest, options)
    try:
        labelled = [_label_task(cal, i, dest, options)
                    for i in range(len(cal["calibrated"].report["trials"]))]
        return _finish_task(cal, session, dest, options, *labelled)
    except BaseException:
        shutil.rmtree(_staging(Path(dest)), ignore_errors=True)
        raise


def submit_sessions(client, sessions, dests, options: dict, overwrite: bool, tag: str) -> list:
    """Submit sessions to a ``distributed.Client``, each as a small task graph: one calibration
    task (read every trial, calibrate), then one labelling task per trial (on any free worker),
    then a finishing task (report, rename). Calibrations of all sessions are submitted at once;
    a session's labelling tasks are submitted as soon as its calibration says how many trials
    it has. Returns one future per session, in order: its finishing task (result as
    :func:`run_session`'s), or its calibration task when that failed (its error)."""
    from distributed import as_completed
    cals, counts = [], {}
    for i, (s, d) in enumerate(zip(sessions, dests)):
        key = f"epigeo-{d.name}-{tag}-{i}"
        cal = client.submit(_calibrate_task, s, d, options, overwrite, pure=False,
                            key=f"{key}-calibrate")
        cals.append(cal)
        counts[client.submit(_trial_count, cal, pure=False, key=f"{key}-count")] = i
    finals = list(cals)
    for fut in as_completed(list(counts)):
        i = counts[fut]
        if fut.status != "finished":
            continue                    # the calibration failed: its error is the session's
        s, d, key = sessions[i], dests[i], f"epigeo-{dests[i].name}-{tag}-{i}"
        labels = [client.submit(_label_task, cals[i], k, d, options, pure=False,
                                key=f"{key}-label-{k}") for k in range(fut.result())]
        finals[i] = client.submit(_finish_task, cals[i], s, d, options, *labels, pure=False,
                                  key=f"{key}-finish")
    return finals


def _trial_count(cal: dict) -> int:
    return 0 if cal["status"] == "skipped" else len(cal["calibrated"].report["trials"])
