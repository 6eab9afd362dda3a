"""Driver for tests/learn/test_torchrun.py: one step of examples/train_lifter.py (``train_one``:
a Lifter trained with the 3D-to-2D correction term on tiny synthetic people), run as
``torchrun --nproc_per_node=N _torchrun_lifter.py OUT STEPS BATCH DTYPE``; every rank saves its final
weights and the per-step (all-rank mean) losses to ``OUT/rank{r}_of{W}.pt``."""
from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

import numpy as np  # noqa: E402
import torch  # noqa: E402

from learn.data import camera_frame, make_lifting_set  # noqa: E402
from learn.distributed import init_distributed, shutdown  # noqa: E402
from pose.synthetic import make_people  # noqa: E402
from train_lifter import train_one  # noqa: E402


def main(out: str, steps: int, batch: int, dtype: str) -> None:
    torch.set_num_threads(1)
    env = init_distributed("cpu")
    people = make_people(num_subjects=2, frames_per_clip=12, seed=3)
    rig = people.rig
    truth = camera_frame(people.X, rig.R, rig.t)
    data = make_lifting_set(people.x, rig.K, people.confidence,
                            np.ones(people.num_frames, bool), labels=truth, truth=truth,
                            clip=people.clip)
    # dropout 0: per-rank dropout masks cannot equal one process's masks over the global batch
    cfg = dict(window=1, hidden=64, blocks=1, dropout=0.0, epochs=50, batch=batch, lr=3e-3,
               max_steps=steps, dtype=dtype)
    args = SimpleNamespace(seed=0, no_progress=True, out=None)
    pred, hist, model = train_one(data, data, correction=0.1, args=args, cfg=cfg,
                                  device=env.device, name="ddp")
    torch.save({"state": {k: v.clone() for k, v in model.state_dict().items()},
                "step_loss": hist["step_loss"], "pred": pred, "world_size": env.world_size,
                "backend": env.backend, "samples": len(data)},
               Path(out) / f"rank{env.rank}_of{env.world_size}.pt")
    shutdown()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
