"""Image sync heads on the cached renders with learn.sync_pretext.train_pretext (3-stage curriculum):
--model dense (SyncNet) | kp (keypoint bottleneck: K soft-argmax points + MLP) | row (per-row
profile); --easy N prepends N steps whose unsynchronised partner is any frame >= 30 apart in
the same subject. Prints held-out / easy held-out / train accuracies.
"""
import sys, time, os
from pathlib import Path
import argparse
sys.path.insert(0, str(Path(__file__).resolve().parents[2])); sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np, torch
torch.set_num_threads(1)
from data import build, CACHE
from nets import KPSyncNet, RowSyncNet
from learn.sync_pretext import SyncNet, sample_pairs, train_pretext, pretext_accuracy
ap = argparse.ArgumentParser()
ap.add_argument("--model", default="kp"); ap.add_argument("--steps", type=int, default=450)
ap.add_argument("--lr", type=float, default=2e-3); ap.add_argument("--jitter", type=float, default=0.05)
ap.add_argument("--K", type=int, default=16); ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--stages", type=int, default=3); ap.add_argument("--easy", type=int, default=0); ap.add_argument("--width", type=int, default=32)
a = ap.parse_args()
d = build(a.jitter)
C = int(d["C"]); tr, te, clip = d["tr"], d["te"], d["clip"]
lo, hi, m, n = 8, 30, 0.02, a.stages
st = []
for k in range(n):
    f = 1.0 - k / max(n - 1, 1); st.append((int(round(lo + 0.5 * f * (hi - lo))), m * (1.0 + f)))
per = a.steps * a.batch // n
ptr = [] if a.steps == 0 else [sample_pairs(clip[tr], per, num_cameras=C, min_offset=l, max_offset=hi, min_motion=mm, keypoints=d["kp_det"][:, tr], flip_ratio=0.0, seed=1 + k) for k, (l, mm) in enumerate(st)]
subj = clip // 5
easy = dict(min_offset=30, max_offset=299, num_cameras=C, flip_ratio=0.0)
if a.easy:
    ptr = [sample_pairs(subj[tr], a.easy * a.batch, seed=7, **easy)] + ptr
pte_easy = sample_pairs(subj[te], 1000, seed=8, **easy)
fin = dict(min_offset=lo, max_offset=hi, min_motion=m, num_cameras=C, flip_ratio=0.0)
pte = sample_pairs(clip[te], 2000, keypoints=d["kp_det"][:, te], seed=2, **fin)
ptv = sample_pairs(clip[tr], 1000, keypoints=d["kp_det"][:, tr], seed=3, **fin)
torch.manual_seed(0)
net = KPSyncNet(width=a.width, keypoints=a.K) if a.model == "kp" else RowSyncNet(width=a.width, k=a.K) if a.model == "row" else RowSyncNet(width=a.width, k=a.K, pool="max") if a.model == "rowmax" else SyncNet(width=a.width, size=64)
t0 = time.time()
h = train_pretext(net, d["img_tr"], ptr, batch_size=a.batch, lr=a.lr, sync_weight=1, flip_weight=0, progress=False)
dt = time.time() - t0
print(vars(a))
print(f"steps {len(h['step_loss'])} {dt:.1f}s {dt/len(h['step_loss']):.3f}s/step; stage loss", np.round(h["loss"], 3))
sl = np.array(h["step_loss"]); print("loss by 10%:", np.round([sl[i:i+len(sl)//10].mean() for i in range(0, len(sl), max(1,len(sl)//10))], 3))
r = pretext_accuracy(net, d["img_te"], pte); print("HELD-OUT", {k: round(v, 3) for k, v in r.items()})
r = pretext_accuracy(net, d["img_te"], pte_easy); print("EASY-HO ", {k: round(v, 3) for k, v in r.items()})
r = pretext_accuracy(net, d["img_tr"], ptv); print("TRAIN   ", {k: round(v, 3) for k, v in r.items()})
os.makedirs(f"{CACHE}/nets", exist_ok=True)
torch.save(net.state_dict(), f"{CACHE}/nets/{a.model}_{a.steps}_{a.K}_{a.jitter}.pt")
