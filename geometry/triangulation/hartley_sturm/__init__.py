"""Hartley–Sturm optimal two-view correction (H&Z §12.5) as one unit (Numba, private).

Read in this order: ``poly.py`` (parameterisation, the degree-6 polynomial, the full candidate
search), ``roots.py`` (Fujiwara-scaled real-root isolation used by the full search), ``fast.py``
(the certified fast path: two Newton steps bound the interval, a monotonicity certificate, a
bracketed Newton; falls back to ``poly.hs_correct`` otherwise; and the fused triangulation
kernel that :func:`geometry.triangulate_optimal` calls).
"""
