"""Many sessions at once: session labelling as Dask tasks (``epigeo reconstruct S1 S2 ...``).

:func:`reconstruct_sessions` runs :func:`learn.session.reconstruct_session_folder` for each
session folder, in this process (``workers=0``), on a ``distributed.LocalCluster`` of worker
*processes* (``workers=N``, one thread each), or on any running cluster (``client=`` a
``distributed.Client`` or a scheduler address such as ``"tcp://10.0.0.5:8786"`` from
``dask scheduler`` / ``dask worker``, dask-jobqueue or Kubernetes). On a cluster each session is
a small graph (:func:`submit_sessions`): a calibration task, then one labelling task per trial
on any free worker, then a task that writes the report and renames the output; the
workers must see the session folders and ``out`` at the same paths (a shared file system) and
have epigeo installed.

Outputs: session ``S`` goes to ``out/<S's folder name>/`` (the layout of
:func:`~learn.session.reconstruct_session_folder`, plus ``scale.json``: the inputs' fingerprint
and the options). The tasks write into ``out/.<name>.partial/`` and the last one renames it onto
``out/<name>/`` only when the session is complete, so a killed worker leaves no partial session
under the final name (its staging folder is removed by the next run). A re-run skips sessions
whose outputs are complete and valid (every file readable, same inputs, same options) unless
``overwrite``. A failing session is reported with its path and error; the others finish.
"""
from __future__ import annotations

import argparse
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .scale_tasks import outputs_complete, run_session, session_fingerprint, submit_sessions

import numpy as np

__all__ = ["SessionOutcome", "ScaleRun", "reconstruct_sessions", "run_session", "submit_sessions",
           "outputs_complete", "session_fingerprint", "start_local_cluster", "OneOrMany",
           "add_scale_options", "scale_main", "write_synthetic_session"]


@dataclass(frozen=True)
class SessionOutcome:
    """One session of a run: ``status`` ``"done"``, ``"skipped"`` (complete outputs found) or
    ``"failed"`` (``error`` names the session and the cause); ``frames`` labelled (of the
    stored outputs when skipped); ``seconds`` of the task (wall) and ``cpu_seconds`` (CPU time of
    the process running it); ``trials_skipped``: unreadable trials the session went on without
    (named in ``error``); ``worker``: host:pid that ran it."""

    session: str
    out: str
    status: str
    frames: int = 0
    seconds: float = 0.0
    error: str = ""
    trials_skipped: int = 0
    worker: str = ""
    cpu_seconds: float = 0.0


@dataclass
class ScaleRun:
    """All outcomes of :func:`reconstruct_sessions`, in the order of the sessions given;
    ``seconds``: wall time of the run (cluster start-up excluded, in ``startup_seconds``)."""

    outcomes: list = field(default_factory=list)
    seconds: float = 0.0
    startup_seconds: float = 0.0
    workers: int = 0
    scheduler: str = "in-process"

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def frames(self) -> int:
        """Frames labelled in this run (skipped sessions not counted)."""
        return sum(o.frames for o in self.outcomes if o.status == "done")

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def table(self) -> str:
        """The end-of-run summary: one row per session, then totals."""
        from .tables import format_table
        rows = [{"session": o.session, "status": o.status, "frames": o.frames,
                 "seconds": round(o.seconds, 2), "trials skipped": o.trials_skipped,
                 "worker": o.worker} for o in self.outcomes]
        total = (f"sessions: {self.count('done')} done, {self.count('failed')} failed, "
                 f"{self.count('skipped')} skipped; {self.frames} frames in "
                 f"{self.seconds:.1f} s = {self.frames_per_s:.1f} frames/s "
                 f"({self.scheduler}, {self.workers or 'no'} workers)")
        errors = [o.error for o in self.outcomes if o.error]     # each names its session
        return "\n".join([format_table(rows), total] + errors)


def _outcome(session, dest, result=None, exc=None, seconds=0.0) -> SessionOutcome:
    if exc is not None:
        msg = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
        if str(session) not in msg:
            msg = f"{session}: {msg}"
        return SessionOutcome(str(session), str(dest), "failed", seconds=seconds, error=msg)
    err = "; ".join(f"trial {k} skipped: {v}" for k, v in result["skipped_trials"].items())
    return SessionOutcome(str(session), str(dest), result["status"], result["frames"],
                          result["seconds"], err, result["trials_skipped"], result["worker"],
                          result["cpu_seconds"])


def _client_for(client, workers: int, threads_per_worker: int):
    """``(client, cluster_or_None, owned)`` for the requested scheduler."""
    from distributed import Client
    if client is not None and not isinstance(client, str):
        return client, None, False
    if isinstance(client, str):
        try:
            return Client(client, timeout="20s"), None, True
        except OSError as exc:
            raise ValueError(f"--scheduler: no Dask scheduler answers at {client} ({exc})") \
                from None
    cluster = start_local_cluster(workers, threads_per_worker)
    return Client(cluster), cluster, True


def start_local_cluster(workers: int, threads_per_worker: int = 1, **kwargs):
    """A ``distributed.LocalCluster`` of ``workers`` processes, one Dask thread each, Numba and
    OpenMP limited to ``threads_per_worker`` threads, no dashboard. Dask's nannies set
    ``MALLOC_TRIM_THRESHOLD_=65536`` in their workers, which turns off glibc's adaptive mmap
    threshold: every large NumPy array is then a fresh mmap, and labelling took 35 % more CPU
    time (1.59 vs 1.18 s for 3 sessions, measured); it is left unset here."""
    import logging

    import dask
    from distributed import LocalCluster
    env = {"NUMBA_NUM_THREADS": str(threads_per_worker), "OMP_NUM_THREADS":
           str(threads_per_worker), **kwargs.pop("env", {})}
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                            dashboard_address=None, silence_logs=logging.ERROR, env=env,
                            **kwargs)


def reconstruct_sessions(sessions, out, *, client=None, workers: int | None = None,
                         threads_per_worker: int = 1, overwrite: bool = False,
                         progress: bool = False, **options) -> ScaleRun:
    """Label many session folders (on a cluster: per session a calibration task, one labelling
    task per trial, a finishing task).

    Args:
        sessions: session folders (see :mod:`learn.session`); each goes to
            ``out/<folder name>`` (two sessions with the same folder name: ValueError).
        client: a ``distributed.Client``, a scheduler address (str), or ``None``: then
            ``workers`` > 0 starts a ``LocalCluster`` of that many worker processes (closed at
            the end), and ``workers`` 0 runs in this process (one session after the other).
            Default (``None``, ``None``): a LocalCluster with one worker per CPU core.
        threads_per_worker: Numba/OpenMP threads of each LocalCluster worker process.
        overwrite: redo sessions whose outputs are complete.
        progress: show a Dask progress bar on the client (a tqdm bar in-process).
        **options: passed to :func:`learn.session.reconstruct_session_folder`
            (``image_size``, ``calib``, ``seed``, ...).
    Returns:
        :class:`ScaleRun` (per-session :class:`SessionOutcome`; a failure never raises).
    """
    sessions = [Path(s) for s in sessions]
    if not sessions:
        raise ValueError("SESSION: give at least one session folder")
    out = Path(out)
    dests = [out / (s.resolve().name or "session") for s in sessions]
    seen = {}
    for s, d in zip(sessions, dests):
        if d in seen:
            raise ValueError(f"SESSION: {seen[d]} and {s} would both write to {d}; rename one "
                             "folder or run them with different --out")
        seen[d] = s
    options = {"quiet": True, **options}
    if client is None and workers is None:
        workers = os.cpu_count() or 1
    run = ScaleRun(workers=0 if client is None and not workers else (workers or 0))
    if client is None and not workers:
        from tqdm import tqdm
        t0 = time.perf_counter()
        for s, d in tqdm(list(zip(sessions, dests)), desc="sessions", disable=not progress):
            t1 = time.perf_counter()
            try:
                run.outcomes.append(_outcome(s, d, run_session(s, d, options, overwrite)))
            except Exception as exc:  # noqa: BLE001 - reported per session, the others go on
                run.outcomes.append(_outcome(s, d, exc=exc, seconds=time.perf_counter() - t1))
        run.seconds = time.perf_counter() - t0
        return run
    t0 = time.perf_counter()
    cl, cluster, owned = _client_for(client, workers or 0, threads_per_worker)
    try:
        run.startup_seconds = time.perf_counter() - t0
        run.scheduler = "LocalCluster" if cluster is not None else str(cl.scheduler.address)
        run.workers = len(cl.scheduler_info(n_workers=-1)["workers"]) if cluster is None \
            else workers
        t0 = time.perf_counter()
        tag = uuid.uuid4().hex[:8]      # fresh keys: never the cached result of an earlier run
        futures = submit_sessions(cl, sessions, dests, options, overwrite, tag)
        if progress:
            from distributed import progress as dask_progress
            dask_progress(futures)
        for s, d, f in zip(sessions, dests, futures):
            try:
                run.outcomes.append(_outcome(s, d, f.result()))
            except Exception as exc:  # noqa: BLE001 - KilledWorker, ValueError, ...
                f.cancel()              # release its graph: a lost step is not recomputed
                run.outcomes.append(_outcome(s, d, exc=exc))
        run.seconds = time.perf_counter() - t0
    finally:
        if owned:
            cl.close()
            if cluster is not None:
                cluster.close()
    return run


class OneOrMany(argparse.Action):
    """``nargs="+"`` that stores one value as itself (the single-INPUT command unchanged) and
    several as a list (sessions for :func:`scale_main`)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values[0] if len(values) == 1 else list(values))


def add_scale_options(parser) -> None:
    """``--workers N``, ``--scheduler ADDRESS``, ``--overwrite`` for ``epigeo reconstruct``
    (several SESSION arguments are allowed with or without them; :func:`scale_main`)."""
    g = parser.add_argument_group("many sessions (Dask; learn/scale.py)")
    g.add_argument("--workers", type=int, metavar="N",
                   help="label the SESSION folders as Dask tasks on a LocalCluster of N worker "
                        "processes (0: in this process); each goes to OUT/<folder name>")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="use a running Dask cluster instead (e.g. tcp://10.0.0.5:8786; the "
                        "workers must see the same paths)")
    g.add_argument("--overwrite", action="store_true",
                   help="redo sessions whose outputs in OUT are complete (default: skip them)")
    parser.set_defaults(scale_main=scale_main)


def scale_main(args):
    """``epigeo reconstruct SESSION [SESSION ...] [--workers N | --scheduler ADDRESS]``: returns
    ``None`` for one INPUT without those flags (``args.input`` becomes that one path: the
    single-input command as before), else runs :func:`reconstruct_sessions`, prints the summary
    table and returns the :class:`ScaleRun`; raises ``ValueError`` (exit 2) when a session
    failed (the others are done) or the options do not fit sessions."""
    inputs = list(args.input) if isinstance(args.input, (list, tuple)) else [args.input]
    if len(inputs) == 1 and args.workers is None and not args.scheduler:
        args.input = inputs[0]
        return None
    if args.workers is not None and args.scheduler:
        raise ValueError("--workers/--scheduler: give one (a new LocalCluster or a running "
                         "cluster)")
    if args.workers is not None and args.workers < 0:
        raise ValueError(f"--workers: expected >= 0, got {args.workers}")
    if args.mode != "rig" or (args.calib and not args.intrinsics_only):
        raise ValueError("SESSION: each session is calibrated once from all its trials (rig "
                         "mode); use --calib only with --intrinsics-only")
    options = dict(calib=args.calib, intrinsics_only=args.intrinsics_only,
                   image_size=tuple(args.image_size) if args.image_size else None,
                   focal=args.focal, min_confidence=args.min_confidence, seed=args.seed,
                   trim=args.trim, skeleton=args.skeleton)
    run = reconstruct_sessions(inputs, args.out, client=args.scheduler or None,
                               workers=args.workers or 0, overwrite=args.overwrite,
                               progress=not args.quiet, **options)
    print(run.table(), flush=True)
    if run.count("failed"):
        raise ValueError(f"{run.count('failed')} of {len(inputs)} sessions failed (errors "
                         f"above); the others are in {args.out}")
    return run


def write_synthetic_session(folder, *, trials: int = 2, frames: int = 60, cameras: int = 4,
                            noise_px: float = 2.0, seed: int = 0) -> Path:
    """A synthetic session on disk for tests, benchmarks and trying a cluster out: ``folder/
    participant/trial_<i>/pose/camXX_json/trial_<i>_<frame:012d>_keypoints.json`` (Pose2Sim's
    layout; OpenPose JSON, 17 Human3.6M joints, one person, confidence 0.9) filmed by a
    1000×1000 px 4-camera ring (:func:`pose.make_people_rig`) with ``noise_px`` Gaussian
    detector noise; motions from :data:`pose.motion.MOTIONS`. Deterministic in ``seed``.
    Returns ``folder``."""
    import pose
    from pose.motion import MOTIONS, make_motion

    rng = np.random.default_rng(seed)
    rig = pose.make_people_rig("h36m", cameras, seed=seed)
    folder = Path(folder)
    for i in range(trials):
        X = make_motion(MOTIONS[(seed + i) % len(MOTIONS)], frames, seed=seed * 1000 + i)
        X = X - np.array([*X[:, 0, :2].mean(0), 0.0]) + np.array([*rng.uniform(-1, 1, 2), 0.0])
        x = rig.project(X) + rng.normal(0, noise_px, (cameras, frames, X.shape[1], 2))
        kp = np.concatenate([x, np.full(x.shape[:-1] + (1,), 0.9)], -1)
        trial = f"trial_{i + 1}"
        for c in range(cameras):
            d = folder / "participant" / trial / "pose" / f"cam{c + 1:02d}_json"
            d.mkdir(parents=True, exist_ok=True)
            for t in range(frames):
                pose.write_openpose_json(d / f"{trial}_{t:012d}_keypoints.json", kp[c, t][None])
    return folder
