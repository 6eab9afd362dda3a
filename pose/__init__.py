"""epigeo.pose — skeletons, synthetic people and rigs, metrics, file formats, plots.

Units: metres, z up for 3D; pixels in OpenCV's convention for 2D. May import ``geometry``.
"""
from .metrics import (auc, bone_length_consistency, joint_errors, mpjpe, n_mpjpe, optimal_scale,
                      pa_mpjpe, pck3d, procrustes_align)
from .motion import MOTIONS, forward_kinematics, make_motion, make_subject
from .noise import DetectorNoise, NoisyDetections, apply_detector_noise
from .pss import PSSModel, fit_pss, load_pss, normalize_poses, pss
from .skeletons import (BODY_25, BODY_25B, COCO_17, COMMON_12, H36M_17, MPII_16, SKELETONS,
                        Skeleton, bone_lengths, flip_left_right, get_skeleton, joint_map,
                        map_joints)
from .synthetic import (SyntheticPeople, make_people, make_people_rig, project_rig,
                        random_distortion)
