"""Tuple batches: each step takes A anchors, the C views at t and at t+o (2*C*A images) and
trains on all cross-camera pairs (12 synchronised + 12 offset per anchor). --fresh 1 re-renders
every view with a new appearance at every step (no image is seen twice), which separates
learning the pose from memorising images; --subjects S, --size, --width, --easy N.
"""
import sys, time, os
from pathlib import Path
import argparse
sys.path.insert(0, str(Path(__file__).resolve().parents[2])); sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np, torch
from torch import nn
from torch.nn import functional as Fn
torch.set_num_threads(1)
from data import build
from learn.heatmap_net import Backbone, image_tensor, soft_argmax_2d
from learn.sync_pretext import sample_pairs, SyncNet

class Row(nn.Module):
    def __init__(self, width=32, k=16, hidden=128, size=64, direct=True):
        super().__init__()
        self.backbone = Backbone(width, 2)
        self.proj = nn.Sequential(nn.Conv2d(width, k, 1), nn.BatchNorm2d(k), nn.ReLU())
        n = k * (size // 4)
        self.direct = direct
        if not direct:
            self.enc = nn.Sequential(nn.Linear(n, hidden), nn.BatchNorm1d(hidden), nn.ReLU()); n = hidden
        self.head = nn.Sequential(nn.Linear(2 * n, hidden), nn.ReLU(), nn.Linear(hidden, 1))
    def embed(self, x):
        g = self.proj(self.backbone(image_tensor(x)))
        e = g.mean(3).flatten(1)
        return e if self.direct else self.enc(e)
    def pair(self, ea, eb):
        return self.head(torch.cat([ea + eb, (ea - eb).abs()], -1))[:, 0]

class Dense(nn.Module):
    def __init__(self, width, size):
        super().__init__(); self.net = SyncNet(width=width, size=size)
    def embed(self, x): return self.net.embed(x)
    def pair(self, ea, eb):
        return self.net.sync_head(torch.cat([ea + eb, (ea - eb).abs()], -1))[:, 0]

ap = argparse.ArgumentParser()
ap.add_argument("--model", default="row"); ap.add_argument("--steps", type=int, default=300)
ap.add_argument("--easy", type=int, default=100); ap.add_argument("--A", type=int, default=8)
ap.add_argument("--shared", type=int, default=0); ap.add_argument("--seed", type=int, default=0); ap.add_argument("--nobn", type=int, default=0); ap.add_argument("--fresh", type=int, default=0); ap.add_argument("--subjects", type=int, default=5); ap.add_argument("--size", type=int, default=64); ap.add_argument("--width", type=int, default=32); ap.add_argument("--lr", type=float, default=2e-3); ap.add_argument("--jitter", type=float, default=0.05)
a = ap.parse_args()
d = build(a.jitter, shared=bool(a.shared), size=a.size, S=a.subjects)
if a.fresh:
    from pose.synthetic import make_people
    from learn.data import camera_frame
    from learn.render import render_people
    people = make_people(num_subjects=a.subjects, frames_per_clip=60, seed=0)
    TC = camera_frame(people.X, people.rig.R, people.rig.t)[:, d["tr"]]
    KK = people.rig.K
    def fresh(fr, seed):
        Cn = TC.shape[0]
        r = render_people(TC[:, fr].reshape(-1, 17, 3), np.repeat(KK, len(fr), 0), size=a.size, seed=seed, jitter=a.jitter)
        return torch.as_tensor(r.images.reshape(Cn, len(fr), 3, a.size, a.size))
C = int(d["C"]); tr, te, clip = d["tr"], d["te"], d["clip"]; subj = clip // 5
img = torch.as_tensor(d["img_tr"]); img_te = torch.as_tensor(d["img_te"])
ii, jj = np.where(~np.eye(C, dtype=bool))                     # ordered i != j
iu, ju = np.triu_indices(C, 1)
def anchors(n, stage, seed):
    if stage == "easy":
        return sample_pairs(subj[tr], n, num_cameras=C, min_offset=30, max_offset=299, sync_ratio=0, flip_ratio=0, seed=seed)
    lo, mm = stage
    return sample_pairs(clip[tr], n, num_cameras=C, min_offset=lo, max_offset=30, min_motion=mm, keypoints=d["kp_det"][:, tr], sync_ratio=0, flip_ratio=0, seed=seed)
stages = ["easy"] * a.easy + [(19, 0.04)] * (a.steps // 3) + [(14, 0.03)] * (a.steps // 3) + [(8, 0.02)] * (a.steps - 2 * (a.steps // 3))
torch.manual_seed(a.seed)
net = Row(width=a.width, size=a.size) if a.model == "row" else Row(width=a.width, size=a.size, direct=False) if a.model == "rowenc" else Dense(a.width, a.size)
if a.nobn and a.model == "dense":
    net.net.encoder[-2] = nn.Identity()        # no batch norm on the view embedding
opt = torch.optim.Adam(net.parameters(), lr=a.lr)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, len(stages), eta_min=a.lr / 20)
pools = {}
t0 = time.time(); losses = []; accs = []
net.train()
for s, st in enumerate(stages):
    key = str(st)
    if key not in pools: pools[key] = anchors(20000, st, seed=len(pools) + 11)
    P = pools[key]; k = np.random.default_rng(s + 100000 * a.seed).integers(0, len(P), a.A)
    fa, fb = P.frame_a[k], P.frame_b[k]
    x = fresh(np.concatenate([fa, fb]), 1000 + s + 100000 * a.seed) if a.fresh else torch.cat([img[:, fa], img[:, fb]], 1)
    e = net.embed(x.reshape(-1, *x.shape[2:])).reshape(C, 2 * a.A, -1)
    A = a.A
    # sync: same time, cams iu<ju, both instants; unsync: i at t, j at t+o, i != j
    ea = torch.cat([e[iu, :A], e[iu, A:], e[ii, :A]], 0).reshape(-1, e.shape[-1])
    eb = torch.cat([e[ju, :A], e[ju, A:], e[jj, A:]], 0).reshape(-1, e.shape[-1])
    y = torch.cat([torch.ones(2 * len(iu) * A), torch.zeros(len(ii) * A)])
    logit = net.pair(ea, eb)
    loss = Fn.binary_cross_entropy_with_logits(logit, y)
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0); opt.step(); sched.step()
    losses.append(loss.item()); accs.append(((logit > 0).float() == y).float().mean().item())
    if (s + 1) % 100 == 0:
        print(f"step {s+1} {key} loss {np.mean(losses[-100:]):.3f} acc {np.mean(accs[-100:]):.3f} {time.time()-t0:.0f}s", flush=True)
dt = time.time() - t0
print(vars(a), f"{dt:.0f}s {dt/len(stages):.3f}s/step")
net.eval()
@torch.no_grad()
def acc(images, P):
    out = []
    for s in range(0, len(P), 128):
        sl = slice(s, s + 128)
        ea = net.embed(images[P.cam_a[sl], P.frame_a[sl]]); eb = net.embed(images[P.cam_b[sl], P.frame_b[sl]])
        out.append(net.pair(ea, eb))
    l = torch.cat(out).numpy() > 0
    return float((l == P.sync).mean()), float(l[P.sync].mean()), float((~l[~P.sync]).mean())
fin = dict(min_offset=8, max_offset=30, min_motion=0.02, num_cameras=C, flip_ratio=0.0)
print("HELD-OUT", acc(img_te, sample_pairs(clip[te], 2000, keypoints=d["kp_det"][:, te], seed=2, **fin)))
print("EASY-HO ", acc(img_te, sample_pairs(subj[te], 1000, num_cameras=C, min_offset=30, max_offset=299, flip_ratio=0, seed=8)))
print("TRAIN   ", acc(img, sample_pairs(clip[tr], 1000, keypoints=d["kp_det"][:, tr], seed=3, **fin)))
