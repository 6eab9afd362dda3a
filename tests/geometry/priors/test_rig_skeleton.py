"""The calibration ↔ priors loop (:func:`geometry.refine_rig_skeleton`): a bundle adjustment on
the observations refine_skeleton repaired and kept moves self-calibrated cameras towards the
truth; with no camera round it is refine_skeleton itself."""
from __future__ import annotations

import numpy as np
import pytest

import geometry as geo
import pose

from .test_skeleton import _case, _kw


def _rot_err(R, R_true):
    C = len(R)
    return np.median([geo.rotation_error_deg(R[j] @ R[i].T, R_true[j] @ R_true[i].T)
                      for i in range(C) for j in range(i + 1, C)])


def test_camera_round_moves_a_self_calibrated_rig_towards_the_truth():
    p = _case(outliers=0.1, swaps=0.05, frames=300, seed=1)   # 600 frames: BA on all of them
    rig = p.rig
    rec = geo.reconstruct_rig(p.x, rig.K, confidence=p.confidence, seed=0)
    before = _rot_err(rec.R, rig.R)
    out = geo.refine_rig_skeleton(p.x, rig.K, rec.R, rec.t, **_kw(p))
    after = _rot_err(out.R, rig.R)
    assert out.rounds == 1 and out.bundle is not None and out.bundle.valid
    assert after < 0.7 * before, (before, after)                 # 0.045 -> 0.020 deg
    assert out.refinement.valid.mean() > 0.99
    np.testing.assert_allclose(out.R[0], rec.R[0], atol=1e-12)          # camera 0 fixes the world


def test_no_camera_round_is_refine_skeleton():
    p = _case(frames=30, seed=1)
    rig = p.rig
    out = geo.refine_rig_skeleton(p.x, rig.K, rig.R, rig.t, camera_rounds=0, **_kw(p))
    ref = geo.refine_skeleton(p.x, rig.K, rig.R, rig.t, **_kw(p))
    assert out.rounds == 0 and out.bundle is None
    np.testing.assert_array_equal(out.refinement.X, ref.X)
    np.testing.assert_array_equal(out.R, rig.R)


@pytest.mark.parametrize("kwargs, pattern", [({"camera_rounds": -1}, "camera_rounds"),
                                             ({"ba_iterations": 0}, "ba_iterations")])
def test_bad_input_names_the_argument(kwargs, pattern):
    rig = pose.make_people_rig("h36m", 4)
    x = np.zeros((4, 3, 2, 2))
    with pytest.raises(ValueError, match=pattern):
        geo.refine_rig_skeleton(x, rig.K, rig.R, rig.t, bones=np.array([[0, 1]]), **kwargs)
