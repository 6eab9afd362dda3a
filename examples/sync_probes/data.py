"""Shared data for the sync probes: the --quick synthetic people (5 subjects x 60 frames x 4 cameras,
subject 4 held out) rendered once (learn.render) and cached as .npz under $SYNC_PROBES_CACHE
(default results/sync_probes). `python examples/sync_probes/data.py` builds it.
"""
import sys, time, os
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[2])); sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np, torch
CACHE = os.environ.get('SYNC_PROBES_CACHE', str(Path(__file__).resolve().parents[2] / 'results' / 'sync_probes'))
torch.set_num_threads(1)
from learn.data import camera_frame
from learn.sync_diagnose import crop_keypoints
from pose.synthetic import make_people
from train_sync_pretext import render_all

def build(jitter=0.05, S=5, F=60, size=64, seed=0, shared=False):
    fn = f"{CACHE}/data_{S}_{F}_{size}_{jitter}{'_shared' if shared else ''}.npz"
    os.makedirs(CACHE, exist_ok=True)
    if os.path.exists(fn):
        d = dict(np.load(fn, allow_pickle=True)); return d
    people = make_people(num_subjects=S, frames_per_clip=F, seed=seed)
    rig = people.rig
    tr = np.flatnonzero(people.subject < S - 1); te = np.flatnonzero(people.subject == S - 1)
    tc = camera_frame(people.X, rig.R, rig.t)
    t0 = time.time()
    from learn.render import render_people
    def ra(frames, sd, j):
        app = np.tile(people.subject[frames], tc.shape[0]).astype(np.int64) if shared else None
        r = render_people(tc[:, frames].reshape(-1, 17, 3), np.repeat(rig.K, len(frames), 0), size=size, seed=sd, jitter=j, appearance=app)
        return r.images.reshape(tc.shape[0], len(frames), 3, size, size)
    img_tr = ra(tr, seed + 10, jitter)
    img_te = ra(te, seed + 20, 0.0)
    print("render", time.time() - t0)
    x_det = np.where((people.confidence >= 0.5)[..., None], people.x, np.nan)
    d = dict(img_tr=img_tr, img_te=img_te, tr=tr, te=te, clip=people.clip, motion=people.motion,
             kp_det=crop_keypoints(x_det), kp_clean=crop_keypoints(people.x_clean), C=rig.num_cameras)
    np.savez(fn, **d)
    return d
if __name__ == "__main__":
    d = build(float(sys.argv[1]) if len(sys.argv) > 1 else 0.05)
    print({k: getattr(v, "shape", v) for k, v in d.items()})
