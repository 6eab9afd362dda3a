"""epigeo.geometry — batched multi-view geometry (numpy + Numba; torch variants in ``geometry.torch``).

Conventions (OpenCV's): pixels ``(..., N, 2)`` float64, leading dims are independent problems;
``x_cam = R X + t``; relative pose ``X2 = R X1 + t`` with ``|t| = 1``; ``x2ᵀ F x1 = 0``;
``E = K2ᵀ F K1``. Results are frozen dataclasses with a ``valid`` field.
"""
from .camera import (camera_centers, compose_poses, direction_error_deg, distort_normalized,
                     essential_from_pose, fundamental_from_pose, invert_pose, look_at,
                     matrix_to_rodrigues, project_points, projection_matrix, relative_pose,
                     rodrigues_to_matrix, rotation_error_deg, skew, undistort_points)
from .synthetic import (MultiViewScene, Rig, TwoViewScene, human_like_points, make_multiview_scene,
                        make_random_rig, make_ring_rig, make_two_view_scene,
                        two_view_from_multiview)
from .fundamental import (fundamental_7point, fundamental_8point, fundamental_least_squares,
                          hartley_normalize, sampson_distance, symmetric_epipolar_distance)
from .essential import PoseResult, decompose_essential, essential_from_fundamental, recover_pose
from .ransac import FundamentalResult, estimate_fundamental
from .relative_pose import RelativePoseResult, estimate_relative_pose
from .triangulation import (OptimalTriangulation, Triangulation, fundamental_from_projections,
                            triangulate_dlt, triangulate_optimal)
from .fusion import (MedianResult, MultiviewTriangulation, geometric_median, triangulate_multiview,
                     vector_median)
from .alignment import (Similarity, apply_similarity, rotation_aligning, scale_from_bone_lengths,
                        scale_from_height, umeyama, up_from_spine)
from .bundle import BundleResult, bundle_adjust
from .selfcalib import FocalResult, focal_from_fundamental, intrinsics_from_image_size
from .rig import RigReconstruction, reconstruct_rig
from .sync import TimeOffsets, apply_time_offsets, estimate_time_offsets
from .rig_windowed import WindowedRigReconstruction, reconstruct_rig_windowed
# The submodule ``geometry.relative_pose`` shadows the function of the same name once imported;
# the public name is the function (camera 2's pose relative to camera 1).
from .camera import relative_pose  # noqa: E402,F811
