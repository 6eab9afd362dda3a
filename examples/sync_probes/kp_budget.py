"""How many pretext steps does the sync task need even with perfect 2D keypoints? The keypoint
classifier (learn.sync_diagnose) trained at several (steps, batch) budgets on clean keypoints and on
the rendered crops' keypoints (jitter 0 / 0.05); held-out = clean keypoints of subject 4.
"""
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2])); sys.path.insert(0, str(Path(__file__).resolve().parent)); sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np, torch; torch.set_num_threads(1)
from data import build
from learn.sync_diagnose import train_keypoint_sync, keypoint_sync_logits
from learn.sync_pretext import sample_pairs
from learn.render import render_people
from learn.data import camera_frame
from pose.synthetic import make_people
d = build(0.05); C = 4; tr, te, clip = d["tr"], d["te"], d["clip"]
fin = dict(min_offset=8, max_offset=30, min_motion=0.02, num_cameras=C, flip_ratio=0.0)
ptr = sample_pairs(clip[tr], 20000, keypoints=d["kp_det"][:, tr], seed=1, **fin)
pte = sample_pairs(clip[te], 2000, keypoints=d["kp_det"][:, te], seed=2, **fin)
people = make_people(num_subjects=5, frames_per_clip=60, seed=0); rig = people.rig
tc = camera_frame(people.X, rig.R, rig.t)
def jit_kp(j, seed):
    r = render_people(tc[:, tr].reshape(-1, 17, 3), np.repeat(rig.K, len(tr), 0), size=64, seed=seed, jitter=j)
    return (r.joints / 64 - 0.5).reshape(C, len(tr), 17, 2)
kpc = d["kp_clean"]
for name, kptr in (("clean", kpc[:, tr]), ("render_j0", jit_kp(0.0, 10)), ("render_j05", jit_kp(0.05, 10))):
    for steps, bs in ((800, 256), (450, 32), (2000, 32)):
        net = train_keypoint_sync(kptr, ptr, steps=steps, batch_size=bs, seed=0)
        ok = (keypoint_sync_logits(net, kpc[:, te], pte) > 0) == pte.sync
        ok2 = (keypoint_sync_logits(net, kptr, ptr) > 0) == ptr.sync
        print(name, steps, bs, f"heldout {ok.mean():.3f} train {ok2.mean():.3f}", flush=True)
