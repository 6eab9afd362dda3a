"""learn.scale on a real ``distributed.LocalCluster`` of 2 worker processes (no mocks):
three synthetic sessions labelled on the cluster equal the in-process results exactly, a
session with a corrupt file fails alone with the file's path in its error, a second run skips
the complete sessions, and a worker killed (SIGKILL) in the middle of a session leaves nothing
under the session's output name; the next run redoes that session."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
import dask  # noqa: E402

from learn.cli import main  # noqa: E402
from learn.scale import (outputs_complete, reconstruct_sessions,  # noqa: E402
                         write_synthetic_session)
from learn.session import reconstruct_session_folder  # noqa: E402

OPTIONS = dict(image_size=(1000, 1000), seed=0)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("sessions")
    good = [write_synthetic_session(root / name, trials=2, frames=40, seed=i)
            for i, name in enumerate(("lab_a", "lab_b", "lab_c"))]
    bad = write_synthetic_session(root / "lab_corrupt", trials=1, frames=40, seed=7)
    corrupt = bad / "participant" / "trial_1" / "pose" / "cam02_json" / \
        "trial_1_000000000007_keypoints.json"
    corrupt.write_text(corrupt.read_text()[:25])          # a truncated JSON file
    ref = {}
    for s in good:                                        # the in-process results
        out = tmp_path_factory.mktemp("ref") / s.name
        reconstruct_session_folder(s, out, **OPTIONS)
        ref[s.name] = out
    return {"root": root, "good": good, "bad": bad, "corrupt": corrupt, "ref": ref}


@pytest.fixture(scope="module")
def client():
    # a task whose worker dies fails at once (no retry on another worker), so the test sees it
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=40)
        cl = distributed.Client(cluster)
        cl.wait_for_workers(2, timeout=120)
        yield cl
        cl.close()
        cluster.close()


def _assert_same_outputs(a: Path, b: Path):
    assert (a / "calibration.toml").read_text() == (b / "calibration.toml").read_text()
    files = sorted(p.relative_to(a) for p in a.rglob("pseudo_labels.npz"))
    assert len(files) == 2
    assert files == sorted(p.relative_to(b) for p in b.rglob("pseudo_labels.npz"))
    for f in files:
        with np.load(a / f) as za, np.load(b / f) as zb:
            assert za.files == zb.files
            for k in za.files:
                np.testing.assert_array_equal(za[k], zb[k], err_msg=f"{f}:{k}")
    ra, rb = (_untimed(json.loads((p / "session_report.json").read_text())) for p in (a, b))
    assert ra["per_trial"] and ra == rb


def _untimed(v):
    """A report without its timings (``*seconds`` keys)."""
    if isinstance(v, dict):
        return {k: _untimed(x) for k, x in v.items() if not k.endswith("seconds")}
    return [_untimed(x) for x in v] if isinstance(v, list) else v


def test_cluster_equals_in_process_corrupt_session_fails_alone_rerun_skips(data, client,
                                                                           tmp_path):
    sessions = data["good"][:2] + [data["bad"]] + data["good"][2:]
    run = reconstruct_sessions(sessions, tmp_path, client=client, **OPTIONS)
    status = {Path(o.session).name: o.status for o in run.outcomes}
    assert status == {"lab_a": "done", "lab_b": "done", "lab_corrupt": "failed",
                      "lab_c": "done"}
    bad = run.outcomes[2]
    assert str(data["corrupt"]) in bad.error and "not a readable JSON" in bad.error
    assert not (tmp_path / "lab_corrupt").exists()
    assert not list(tmp_path.glob(".*"))                       # no staging folders left
    assert run.frames == 3 * 2 * 40 and run.frames_per_s > 0
    assert {o.worker for o in run.outcomes if o.worker}        # host:pid of the workers
    for s in data["good"]:
        _assert_same_outputs(tmp_path / s.name, data["ref"][s.name])
    assert "3 done, 1 failed, 0 skipped" in run.table()

    again = reconstruct_sessions(sessions, tmp_path, client=client, **OPTIONS)
    assert [o.status for o in again.outcomes] == ["skipped", "skipped", "failed", "skipped"]
    assert "0 done, 1 failed, 3 skipped" in again.table()
    # other options (a different seed) make the stored outputs invalid for this run
    assert not outputs_complete(data["good"][0], tmp_path / "lab_a", {**OPTIONS, "seed": 1})[0]
    assert outputs_complete(data["good"][0], tmp_path / "lab_a", {**OPTIONS, "quiet": True})[0]


def test_killed_worker_leaves_no_partial_output_and_is_redone(data, client, tmp_path):
    big = write_synthetic_session(tmp_path / "in" / "lab_big", trials=4, frames=120, seed=11)
    out = tmp_path / "out"
    staging = out / ".lab_big.partial"
    first_file = staging / "participant" / "trial_1" / "pseudo_labels.npz"
    pids = client.run(os.getpid)                               # {worker address: pid}
    result = {}
    th = threading.Thread(target=lambda: result.update(
        run=reconstruct_sessions([big], out, client=client, **OPTIONS)))
    th.start()
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and time.monotonic() < deadline and th.is_alive():
        if first_file.exists():                                # labelling is under way
            busy = [w for w, keys in client.processing().items() if keys]
            killed = pids[busy[0]]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.005)
    th.join(120)
    assert killed is not None, "the session finished before the worker could be killed"
    o = result["run"].outcomes[0]
    assert o.status == "failed" and str(big) in o.error
    assert "KilledWorker" in o.error or "died" in o.error
    assert not (out / "lab_big").exists()                      # nothing under the final name
    assert not (staging / "scale.json").exists()               # the session never finished
    assert not outputs_complete(big, out / "lab_big", dict(OPTIONS))[0]

    client.wait_for_workers(2, timeout=120)                    # the nanny restarted it
    redo = reconstruct_sessions([big], out, client=client, **OPTIONS)
    assert redo.outcomes[0].status == "done", redo.table()
    assert redo.outcomes[0].frames == 4 * 120
    assert not staging.exists()
    assert outputs_complete(big, out / "lab_big", dict(OPTIONS))[0]
    assert len(list((out / "lab_big").rglob("pseudo_labels.npz"))) == 4


def test_cli_several_sessions_in_process_skip_and_fail(data, tmp_path, capsys):
    good, bad = [str(s) for s in data["good"][:2]], str(data["bad"])
    common = ["--out", str(tmp_path), "--image-size", "1000", "1000", "--quiet"]
    assert main(["reconstruct", *good, "--workers", "0", *common]) == 0
    assert "2 done, 0 failed, 0 skipped" in capsys.readouterr().out
    for s in data["good"][:2]:
        _assert_same_outputs(tmp_path / s.name, data["ref"][s.name])
    assert main(["reconstruct", *good, bad, *common]) == 2   # several SESSIONs: in-process
    cap = capsys.readouterr()
    assert "0 done, 1 failed, 2 skipped" in cap.out and str(data["corrupt"]) in cap.out
    assert "1 of 3 sessions failed" in cap.err
    assert main(["reconstruct", *good, "--workers", "1", "--scheduler", "tcp://x:1",
                 *common]) == 2
    assert "--workers/--scheduler" in capsys.readouterr().err
