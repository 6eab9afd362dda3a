"""Fit test: can the image SyncNet overfit 256 training pairs? `python examples/sync_probes/fit.py EPOCHS`
(batches of 32, sync head only; prints loss per epoch and train accuracy in eval mode).
"""
import sys, time, os
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2])); sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np, torch
torch.set_num_threads(1)
from data import build
from learn.sync_pretext import SyncNet, sample_pairs, train_pretext, pretext_accuracy, PairSet
d = build(0.05)
C = int(d["C"]); tr = d["tr"]; clip = d["clip"]
kp = d["kp_det"][:, tr]
p = sample_pairs(clip[tr], 256, num_cameras=C, min_offset=8, max_offset=30, min_motion=0.02, keypoints=kp, flip_ratio=0.0, seed=1)
epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
stages = [p] * epochs
torch.manual_seed(0)
net = SyncNet(width=32, embed=256, size=64)
t0 = time.time()
h = train_pretext(net, d["img_tr"], stages, batch_size=32, lr=2e-3, sync_weight=1, flip_weight=0, progress=False)
dt = time.time() - t0
print(f"steps {len(h['step_loss'])} {dt:.1f}s {dt/len(h['step_loss']):.3f}s/step; loss per epoch", np.round(h["loss"], 3))
print("train acc (eval mode)", pretext_accuracy(net, d["img_tr"], p))
