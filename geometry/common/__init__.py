"""Shared helpers below every room of :mod:`geometry` (private to the package).

- ``validate.py`` — argument checks: shapes, dtypes, masks, weights; ``ValueError`` naming the
  argument. Read this first: every public function starts with it.
- ``nb_linalg.py`` — small fixed-size Numba linear algebra (Jacobi eigh, Cholesky, cubic roots,
  rank-2 projection) and the counter-based RNG (``mix64``, ``random_below``) the RANSAC sampler
  uses.
"""
