"""Probe: does a multi-positive contrastive term (views of one instant vs every other view of the
step) and/or one appearance per person (all cameras, both instants; as real cameras film one
person) take the sync head off its plateau reliably? Trained by learn.sync_tuples.train_sync_tuples
(fresh renders every step, tuple batches; until 4 Dec this probe had its own copy of that loop
with the same losses); held-out = the example's final pairs on an unseen subject.

python examples/sync_probes/contrast.py --seed 0 --cw 1.0 --shared 1 --easy 1500 --steps 600
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import numpy as np
import torch

from learn.data import camera_frame
from learn.render import render_people
from learn.sync_diagnose import crop_keypoints
from learn.sync_pretext import SyncNet, pretext_accuracy, sample_pairs
from learn.sync_tuples import train_sync_tuples
from pose.synthetic import make_people

ap = argparse.ArgumentParser()
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--cw", type=float, default=1.0)
ap.add_argument("--tau", type=float, default=0.1)
ap.add_argument("--shared", type=int, default=1)
ap.add_argument("--easy", type=int, default=1500)
ap.add_argument("--steps", type=int, default=600)
ap.add_argument("--A", type=int, default=8)
ap.add_argument("--subjects", type=int, default=9)
ap.add_argument("--frames", type=int, default=60)
ap.add_argument("--size", type=int, default=32)
ap.add_argument("--width", type=int, default=16)
ap.add_argument("--lr", type=float, default=2e-3)
ap.add_argument("--device", default="cpu")
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--tag", default="")
ap.add_argument("--enc", default="flat4", help="flat4 (SyncNet) | flat8 | flat16 (old)")
ap.add_argument("--k", type=int, default=32, help="channels before flattening (flat4/flat8)")
ap.add_argument("--mm", type=float, default=0.02, help="final min_motion (crop sides)")
a = ap.parse_args()
torch.set_num_threads(a.threads)
dev = torch.device(a.device)
people = make_people(num_subjects=a.subjects, frames_per_clip=a.frames, seed=0)
rig = people.rig
C, S = rig.num_cameras, a.size
tr = np.flatnonzero(people.subject < a.subjects - 1)
te = np.flatnonzero(people.subject == a.subjects - 1)
tc = camera_frame(people.X, rig.R, rig.t)
x_det = np.where((people.confidence >= 0.5)[..., None], people.x, np.nan)
kp = crop_keypoints(x_det)


def render(frames, seed, app):
    r = render_people(tc[:, frames].reshape(-1, 17, 3), np.repeat(rig.K, len(frames), 0), size=S,
                      seed=seed, jitter=0.05, appearance=app)
    return torch.as_tensor(r.images.reshape(C, len(frames), 3, S, S))


A = a.A
sub, clip = people.subject[tr], people.clip[tr]
kw = dict(num_cameras=C, sync_ratio=0.0, flip_ratio=0.0)
plan = [(sample_pairs(sub, 20000, min_offset=30, max_offset=int(np.bincount(sub).max()) - 1,
                      seed=40, **kw), a.easy)]
for k, (lo, mm) in enumerate([(19, 2 * a.mm), (14, 1.5 * a.mm), (8, a.mm)]):
    plan.append((sample_pairs(clip, 20000, min_offset=lo, max_offset=30, min_motion=mm,
                              keypoints=kp[:, tr], seed=41 + k, **kw), a.steps // 3))
torch.manual_seed(a.seed)
net = SyncNet(width=a.width, embed=256, size=S, channels=a.k)       # flat4: SyncNet's encoder
if a.enc != "flat4":
    from torch import nn
    from learn.heatmap_net import ConvBlock

    def down(cin, cout):
        return [nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
    if a.enc == "flat16":       # the encoder before 4 Dec: two stride-2 convs to the S/16 grid
        w2 = 2 * a.width
        net.encoder = nn.Sequential(ConvBlock(a.width), *down(a.width, w2), *down(w2, w2),
                                    nn.Flatten(), nn.Linear(w2 * (S // 16) ** 2, 256),
                                    nn.BatchNorm1d(256), nn.ReLU())
    else:                       # flat8: one stride-2 conv, then as flat4
        net.encoder = nn.Sequential(ConvBlock(a.width), *down(a.width, a.width),
                                    nn.Conv2d(a.width, a.k, 1, bias=False), nn.BatchNorm2d(a.k),
                                    nn.ReLU(), nn.Flatten(), nn.Linear(a.k * (S // 8) ** 2, 256),
                                    nn.BatchNorm1d(256), nn.ReLU())


def render_step(frames, seed):
    """The step's views: with --shared, one appearance per anchor (both instants, all cameras)."""
    n = len(frames)
    app = np.tile(np.arange(n) % (n // 2), C).astype(np.int64) if a.shared else None
    return render(frames, seed, app)


t0 = time.time()
h = train_sync_tuples(net, render_step, plan, anchors_per_step=A, lr=a.lr,
                      contrastive_weight=a.cw, temperature=a.tau, seed=a.seed, device=dev,
                      progress=False)
acc_steps = np.asarray(h["step_accuracy"])
for s0 in range(0, len(acc_steps), 100):
    print(f"{a.tag} step {s0 + 100} loss {np.mean(h['step_loss'][s0:s0 + 100]):.3f} "
          f"acc {acc_steps[s0:s0 + 100].mean():.3f}")
total = len(acc_steps)
dt = time.time() - t0
net.eval()
app_te = np.zeros(C * len(te), np.int64) if a.shared else None
img_te = render_people(tc[:, te].reshape(-1, 17, 3), np.repeat(rig.K, len(te), 0), size=S,
                       seed=20, jitter=0.0, appearance=app_te).images.reshape(C, len(te), 3, S, S)
fin = dict(min_offset=8, max_offset=30, min_motion=a.mm, num_cameras=C, flip_ratio=0.0)
pte = sample_pairs(people.clip[te], 2000, keypoints=kp[:, te], seed=2, **fin)
acc = pretext_accuracy(net, img_te, pte, device=dev)
for m in (0.02, 0.03, 0.04, 0.06):
    q = sample_pairs(people.clip[te], 2000, keypoints=kp[:, te], seed=2,
                     **dict(fin, min_motion=m))
    r = pretext_accuracy(net, img_te, q, device=dev)
    print(f"{a.tag} heldout at min_motion {m}: {r['sync']:.3f}")
ptr = sample_pairs(people.clip[tr], 2000, keypoints=kp[:, tr], seed=3, **fin)
app_tr = np.repeat(people.subject[tr][None], C, 0).reshape(-1).astype(np.int64) if a.shared \
    else None
img_tr = render_people(tc[:, tr].reshape(-1, 17, 3), np.repeat(rig.K, len(tr), 0), size=S,
                       seed=30, jitter=0.05, appearance=app_tr).images.reshape(C, len(tr), 3, S, S)
acc_tr = pretext_accuracy(net, img_tr, ptr, device=dev)
print(f"RESULT {a.tag} {vars(a)} heldout {acc['sync']:.3f} (sync {acc['sync_on_sync']:.3f}, "
      f"offset {acc['sync_on_offset']:.3f}) train {acc_tr['sync']:.3f} {dt:.0f}s "
      f"{dt / total:.3f}s/step", flush=True)
