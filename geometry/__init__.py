"""epigeo.geometry — batched multi-view geometry (numpy + Numba; torch variants in ``geometry.torch``).

Conventions (OpenCV's): pixels ``(..., N, 2)`` float64, leading dims are independent problems;
``x_cam = R X + t``; relative pose ``X2 = R X1 + t`` with ``|t| = 1``; ``x2ᵀ F x1 = 0``;
``E = K2ᵀ F K1``. Results are frozen dataclasses with a ``valid`` field.

Every public name is importable from here in one hop. The code lives in rooms by concern
(each room's ``__init__.py`` says what it holds and which file to read first):

- :mod:`geometry.epipolar` — F (7/8-point, least squares), E, pose recovery, relative pose and the
  F-RANSAC front end, with their Numba kernels.
- :mod:`geometry.robust` — the generic batched RANSAC engine (problems × hypotheses).
- :mod:`geometry.triangulation` — DLT, Hartley–Sturm (``hartley_sturm/``), multi-view fusion and
  the medians.
- :mod:`geometry.rig` — static rigs: initialisation, bundle adjustment, focal self-calibration,
  time offsets, windowed reconstruction.
- below all rooms: :mod:`geometry.camera`, :mod:`geometry.alignment`, :mod:`geometry.synthetic`
  (public helpers) and :mod:`geometry.common` (argument validation, small Numba linear algebra).
- :mod:`geometry.people` — several people: per-camera tracks, association across cameras
  without calibration, calibration from the crowd, 3D per person (above ``rig``).
- :mod:`geometry.torch` — the same rooms for torch tensors.

Layering: ``common`` ← ``camera``/``alignment``/``synthetic`` ← ``robust`` ← ``epipolar`` ←
``triangulation`` ← ``rig``; a room imports only from rooms to its left. Nothing in ``geometry``
imports ``pose``, ``learn`` or ``benchmarks``.
"""
from .camera import (camera_centers, compose_poses, direction_error_deg, distort_normalized,
                     essential_from_pose, fundamental_from_pose, invert_pose, look_at,
                     matrix_to_rodrigues, project_points, projection_matrix, relative_pose,
                     rodrigues_to_matrix, rotation_error_deg, skew, undistort_points)
from .synthetic import (MultiViewScene, Rig, TwoViewScene, human_like_points, make_multiview_scene,
                        make_random_rig, make_ring_rig, make_two_view_scene,
                        two_view_from_multiview)
from .epipolar import (FundamentalResult, PoseResult, RelativePoseResult, decompose_essential,
                       essential_from_fundamental, estimate_fundamental, estimate_relative_pose,
                       fundamental_7point, fundamental_8point, fundamental_least_squares,
                       hartley_normalize, recover_pose, sampson_distance,
                       symmetric_epipolar_distance)
from .triangulation import (MedianResult, MultiviewTriangulation, OptimalTriangulation,
                            Triangulation, fundamental_from_projections, geometric_median,
                            triangulate_dlt, triangulate_multiview, triangulate_optimal,
                            vector_median)
from .alignment import (Similarity, apply_similarity, rotation_aligning, scale_from_bone_lengths,
                        scale_from_height, umeyama, up_from_spine)
from .rig import (BundleResult, FocalResult, RigReconstruction, SessionCalibration, TimeOffsets,
                  TrialLabels, WindowedRigReconstruction, apply_time_offsets, bundle_adjust,
                  calibrate_session, estimate_time_offsets, focal_from_fundamental,
                  intrinsics_from_image_size, reconstruct_rig, reconstruct_rig_windowed,
                  reconstruct_session, select_frames, triangulate_session)
from .people import (PeopleAssociation, PeopleReconstruction, associate_people,
                     reconstruct_people, track_people)
from .rig.sync_refine import offsets_with_cameras, smooth_tracks
from .rig.sync_joint import SyncedRig, synchronise_rig, synchronise_session
from .priors import (ObservationNoise, RigSkeletonRefinement, SkeletonRefinement,
                     observation_noise, refine_rig_skeleton, refine_skeleton)
