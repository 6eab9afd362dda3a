"""Several people filmed by one static rig: association across cameras and time, calibration from
the crowd, 3D per person.

Read first: ``associate.py`` (:func:`associate_people`: per-camera 2D tracks → ``F`` per camera
pair from whole tracks → per-frame groups by epipolar consistency → rig calibration from every
group → regrouping with the cameras → 3D tracks → people), then ``reconstruct.py``
(:func:`reconstruct_people`: the rig recalibrated from every associated person and each person
triangulated robustly, ``(T, N, J, 3)``), ``views.py`` (epipolar costs, per-frame grouping, the
``F`` bootstrap), ``linking.py`` (3D tracks, joining tracks into people, 2D-track repair) and
``tracking.py`` (input checks, :func:`track_people`).

Input: ``x (C, T, P, J, 2)`` undistorted pixels, NaN where a slot or joint is empty, slots in
any order per camera-frame. Uses only the public APIs of the rooms below it (``rig``,
``triangulation``, ``epipolar``, ``camera``).
"""
from .associate import PeopleAssociation, associate_people
from .reconstruct import PeopleReconstruction, reconstruct_people
from .tracking import track_people

__all__ = ["PeopleAssociation", "associate_people", "PeopleReconstruction", "reconstruct_people",
           "track_people"]
