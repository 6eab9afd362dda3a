"""epigeo.pose — skeletons, synthetic people and rigs, metrics, file formats, plots.

Units: metres, z up for 3D; pixels in OpenCV's convention for 2D. May import ``geometry``.
Plots live in ``pose.plots`` (imported on demand: it loads matplotlib).
"""
from .bvh import BVHClip, bvh_forward_kinematics, bvh_to_h36m, read_bvh
from .io_calib import Calibration, read_calibration_toml, write_calibration_toml
from .io_coco import CocoKeypoints, read_coco_keypoints, write_coco_keypoints
from .io_npz import (ProjectData, load_project_npz, read_videopose3d_npz, save_project_npz,
                     write_videopose3d_npz)
from .io_openpose import (largest_person, read_openpose_cameras, read_openpose_folder,
                          read_openpose_json, write_openpose_json)
from .metrics import (auc, bone_length_consistency, joint_errors, mpjpe, n_mpjpe, optimal_scale,
                      pa_mpjpe, pck3d, procrustes_align)
from .motion import MOTIONS, forward_kinematics, make_motion, make_subject
from .noise import DetectorNoise, NoisyDetections, apply_detector_noise
from .pss import PSSModel, fit_pss, load_pss, normalize_poses, pss
from .skeletons import (BLAZEPOSE_33, BODY_25, BODY_25B, COCO_17, COMMON_12, H36M_17, MPII_16,
                        SKELETONS, Skeleton, bone_lengths, flip_left_right, get_skeleton, joint_map,
                        map_joints)
from .synthetic import (SyntheticPeople, film_motion, make_people, make_people_rig, project_rig,
                        random_distortion)
