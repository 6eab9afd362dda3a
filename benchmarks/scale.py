"""Scale-out: session labelling on Dask workers, lifter training under torchrun (issue 16).

Labelling: the same synthetic sessions (:func:`learn.scale.write_synthetic_session`, OpenPose JSON
on disk, 4 cameras) labelled by :func:`learn.scale.reconstruct_sessions` in this process (Numba
on 1 thread, and on the default threads) and on a ``LocalCluster`` of 1 and of 2 worker
processes (:func:`learn.scale.start_local_cluster`, 1 thread each; the workers are warmed up first: imports and Numba's cached kernels
loaded, so the rows time labelling, not start-up). Throughput = frames labelled / wall time of
the run (median of the repeats). Per-task overhead: the round trip of an empty task on the
cluster, and (1-worker wall − in-process 1-thread wall) / sessions.

Training: ``torchrun --nproc_per_node=1|2 -m benchmarks.scale --train-worker``: the Lifter of
``examples/train_lifter.py`` (hidden 512, 2 blocks) on synthetic people, the same global batch,
1 torch thread per process, gloo; samples/s from rank 0's training loop time.

The machine is shared: the 1-minute load average before and after each row is in the notes.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ._report import write_report

__all__ = ["run"]

OPTIONS = dict(image_size=(1000, 1000), seed=0)


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _warm(path: str) -> int:
    """Worker warm-up: import the labelling code and run one tiny session (Numba caches)."""
    from learn.scale import run_session
    return run_session(path, Path(path).parent / "warm_out" / str(os.getpid()), dict(
        OPTIONS, quiet=True), overwrite=True)["frames"]


def _noop(i: int) -> int:
    return i


def _label_rows(args, rows, notes, tmp: Path):
    import distributed
    import numba

    from learn.scale import reconstruct_sessions, start_local_cluster, write_synthetic_session
    n, trials, frames, repeat = (4, 1, 80, 1) if args.quick else (8, 2, 150, 3)
    t0 = time.perf_counter()
    sessions = [write_synthetic_session(tmp / "in" / f"session_{i:02d}", trials=trials,
                                        frames=frames, seed=args.seed + i) for i in range(n)]
    warm = write_synthetic_session(tmp / "warm" / "session", trials=1, frames=30, seed=99)
    notes["labelling data"] = (f"{n} sessions x {trials} trials x {frames} frames, 4 cameras, "
                               f"17 joints, OpenPose JSON on local disk (written in "
                               f"{time.perf_counter() - t0:.0f} s)")
    _warm(str(warm))                                           # this process too

    def timed(label, **kw):
        walls, cpus, frames_done, loads = [], [], 0, [_load()]
        for r in range(repeat):
            res = reconstruct_sessions(sessions, tmp / f"out_{label}_{r}", overwrite=True, **kw,
                                       **OPTIONS)
            assert res.count("failed") == 0, res.table()
            walls.append(res.seconds)
            cpus += [o.cpu_seconds for o in res.outcomes]
            frames_done = res.frames
        loads.append(_load())
        cpu_seconds[label] = float(np.median(cpus))
        return float(np.median(walls)), frames_done, loads

    walls, cpu_seconds = {}, {}
    default_threads = numba.get_num_threads()
    for threads in (1, default_threads):
        numba.set_num_threads(threads)
        w, f, loads = timed(f"inproc{threads}", workers=0)
        numba.set_num_threads(default_threads)
        walls[f"in-process {threads}"] = w
        rows.append({"task": "labelling", "method": f"in-process (Numba {threads} thread"
                     f"{'s' if threads > 1 else ''})", "workers": 0, "frames": f,
                     "seconds": w, "frames_per_s": f / w, "load_1min": loads,
                     "cpu_s_per_session": cpu_seconds[f"inproc{threads}"]})
    for nw in (1, 2):
        cluster = start_local_cluster(nw, 1)
        client = distributed.Client(cluster)
        try:
            client.run(_warm, str(warm))
            t = time.perf_counter()
            client.gather(client.map(_noop, range(200), pure=False))
            per_task = (time.perf_counter() - t) / 200
            w, f, loads = timed(f"dask{nw}", client=client)
        finally:
            client.close()
            cluster.close()
        walls[f"dask {nw}"] = w
        rows.append({"task": "labelling", "method": "Dask LocalCluster", "workers": nw,
                     "frames": f, "seconds": w, "frames_per_s": f / w, "load_1min": loads,
                     "empty_task_ms": 1000 * per_task,
                     "cpu_s_per_session": cpu_seconds[f"dask{nw}"]})
    one = next(r for r in rows if r["method"] == "Dask LocalCluster" and r["workers"] == 1)
    for r in rows:
        if r["task"] == "labelling":
            r["speedup"] = r["frames_per_s"] / one["frames_per_s"]
    notes["per-task overhead"] = (
        f"empty-task round trip {rows[-2]['empty_task_ms']:.1f} ms (1 worker) / "
        f"{rows[-1]['empty_task_ms']:.1f} ms (2 workers); 1-worker wall - in-process 1-thread "
        f"wall = {1000 * (walls['dask 1'] - walls['in-process 1']) / n:.0f} ms per session task; "
        f"CPU time per session (median, process of the task): in-process 1 thread "
        f"{cpu_seconds['inproc1']:.2f} s, 1 worker {cpu_seconds['dask1']:.2f} s, 2 workers "
        f"{cpu_seconds['dask2']:.2f} s")


def _train_worker(argv) -> None:
    """Run under torchrun: train the lifter for ``steps`` steps, rank 0 writes samples/s."""
    import torch

    from learn.data import camera_frame, make_lifting_set
    from learn.distributed import init_distributed, is_main_process, shutdown
    from learn.lifter import Lifter
    from learn.losses import beta_for_labels, weighted_smooth_l1
    from learn.train import seed_everything, to_tensor, train_loop
    from pose.synthetic import make_people
    out, steps, batch = Path(argv[0]), int(argv[1]), int(argv[2])
    torch.set_num_threads(1)
    env = init_distributed("cpu")
    people = make_people(num_subjects=3, frames_per_clip=60, seed=0)
    rig = people.rig
    truth = camera_frame(people.X, rig.R, rig.t)
    data = make_lifting_set(people.x, rig.K, people.confidence,
                            np.ones(people.num_frames, bool), labels=truth, truth=truth,
                            clip=people.clip)
    gen = seed_everything(0)
    model = Lifter(hidden=512, num_blocks=2, dropout=0.25)
    tens = {k: to_tensor(getattr(data, k)) for k in ("inputs", "target", "weights")}
    beta = beta_for_labels(data.target)
    hist = train_loop(model, lambda m, b: weighted_smooth_l1(m(b["inputs"]), b["target"],
                                                            b["weights"], beta),
                      tens, epochs=1000, batch_size=batch, lr=1e-3, generator=gen,
                      progress=False, max_steps=steps)
    if is_main_process():
        out.write_text(json.dumps({"seconds": hist["seconds"], "steps": len(hist["step_loss"]),
                                   "batch": batch, "world_size": env.world_size,
                                   "final_loss": hist["step_loss"][-1]}))
    shutdown()


def _train_rows(args, rows, notes, tmp: Path):
    torchrun = Path(sys.executable).with_name("torchrun")
    steps, batch = (20, 256) if args.quick else (150, 256)
    res = {}
    for nproc in (1, 2):
        out = tmp / f"train_{nproc}.json"
        env = dict(os.environ, OMP_NUM_THREADS="1")
        load0 = _load()
        with socket.socket() as sk:
            sk.bind(("127.0.0.1", 0))
            port = sk.getsockname()[1]
        cmd = [str(torchrun), f"--nproc_per_node={nproc}", "--master-addr=127.0.0.1",
               f"--master-port={port}", "-m", "benchmarks.scale", "--train-worker", str(out),
               str(steps), str(batch)]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800,
                           cwd=Path(__file__).resolve().parents[1])
        if p.returncode != 0:
            raise RuntimeError(f"torchrun failed: {p.stderr[-2000:]}")
        r = json.loads(out.read_text())
        res[nproc] = r
        sps = r["steps"] * r["batch"] / r["seconds"]
        rows.append({"task": "training", "method": "torchrun + DDP (gloo)", "workers": nproc,
                     "frames": r["steps"] * r["batch"], "seconds": r["seconds"],
                     "frames_per_s": sps, "samples_per_s": sps, "load_1min": [load0, _load()],
                     "final_loss": r["final_loss"]})
    for r in rows:
        if r["task"] == "training":
            r["speedup"] = r["frames_per_s"] / rows[-2]["frames_per_s"]
    notes["training"] = (f"Lifter hidden 512 x 2 blocks, {steps} steps, global batch {batch} "
                         "(each of 2 ranks: 128), 1 torch thread per process; frames_per_s = "
                         "training samples/s (one camera's 2D pose each), from rank 0's loop "
                         "time (start-up and data building excluded)")


def run(args) -> str:
    rows, notes = [], {}
    notes["machine load"] = (f"{os.cpu_count()} cores shared with other engineers' jobs; "
                             f"1-minute load average at start {_load()} (load_1min column: "
                             "before/after each row)")
    with tempfile.TemporaryDirectory(prefix="epigeo_scale_") as tmp:
        _label_rows(args, rows, notes, Path(tmp))
        _train_rows(args, rows, notes, Path(tmp))
    for r in rows:
        for k in ("seconds", "frames_per_s", "samples_per_s", "speedup", "empty_task_ms",
                  "final_loss", "cpu_s_per_session"):
            if isinstance(r.get(k), float):
                r[k] = round(r[k], 4 if k == "final_loss" else 2)
    return write_report("scale" + ("_quick" if args.quick else ""), rows, args.out,
                        title="Scale-out: Dask labelling, torchrun training",
                        columns=["task", "method", "workers", "frames", "seconds",
                                 "frames_per_s", "speedup", "cpu_s_per_session",
                                 "empty_task_ms", "load_1min"],
                        notes=notes)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--train-worker":
        _train_worker(sys.argv[2:])
