"""Fuzzing every public function of ``geometry`` (the README's API list) with hypothesis.

Each call gets random shapes (including empty ones and fewer points than a minimal sample),
NaN, ±inf, astronomically large and tiny values, duplicated and coincident points, wrong
dtypes and wrong scalar types. Contract: the call returns, or raises ``ValueError``/``TypeError``
whose message names one of the function's arguments; never another exception (LinAlgError,
IndexError, ZeroDivisionError, …), and never hangs: every call runs under a timer (SIGALRM for
Python-level loops, ``faulthandler`` as the backstop that ends the process with a traceback when
compiled code never returns).

Deterministic (``derandomize=True``); the numbers of examples are sized so the module stays within
about a minute on 2 cores once Numba's cache is warm (each function gets one clean warm-up call
outside the timer first, so a cold compile does not count as a hang).
"""
from __future__ import annotations

import faulthandler
import inspect
import re
import signal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import geometry as geo

from .fuzz_specs import _WARM, DEFAULT_EXAMPLES, SLOW, SPECS

README = Path(__file__).resolve().parents[2] / "README.md"
TIMEOUT_S = 60.0          # per call: generous (shared machine, a cold Numba specialisation)
CALLS = {"n": 0, "names": set()}


class Hang(Exception):
    pass


def _api_functions():
    txt = README.read_text()
    block = re.search(r"<!-- api:geometry -->(.*?)<!-- /api -->", txt, re.S).group(1)
    names = re.findall(r"`(\w+)`", block)
    return sorted(n for n in names if not inspect.isclass(getattr(geo, n)))


# ----------------------------------------------------------------------------- the contract
def _on_alarm(signum, frame):
    raise Hang("call exceeded the per-call timeout")


def call_checked(name, args, kwargs):
    """Run ``geometry.<name>(*args, **kwargs)`` under a timer and check the error contract."""
    fn = getattr(geo, name)
    params = list(inspect.signature(fn).parameters) + list(kwargs)   # + names sent via **options
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, TIMEOUT_S)
    faulthandler.dump_traceback_later(3 * TIMEOUT_S, exit=True)
    CALLS["n"] += 1
    try:
        with np.errstate(all="ignore"):
            fn(*args, **kwargs)
    except Hang:
        pytest.fail(f"{name} did not return within {TIMEOUT_S} s")
    except np.linalg.LinAlgError as e:     # a ValueError subclass: check it first
        raise AssertionError(f"{name} raised LinAlgError: {e}") from e
    except (ValueError, TypeError) as e:
        msg = str(e)
        assert any(re.search(rf"\b{re.escape(p)}\b", msg) for p in params), \
            f"{name} raised {type(e).__name__} not naming an argument of {params}: {msg!r}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        faulthandler.cancel_dump_traceback_later()


def test_every_public_function_has_a_fuzz_spec():
    names = _api_functions()
    assert len(names) > 40
    assert sorted(SPECS) == names


# Public functions with known, reported findings: strict xfail, so a fix turns them into failures
# to remove from this dict.
KNOWN: dict = {}   # (the session API's findings were fixed)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(
    reason=KNOWN[n], strict=True)) if n in KNOWN else n for n in sorted(SPECS)])
def test_fuzz(name):
    # one clean warm-up call (Numba compile on a cold cache happens here, not under the timer)
    warm_args, warm_kwargs = _WARM.get(name, (None, None))
    if warm_args is not None:
        with np.errstate(all="ignore"):
            getattr(geo, name)(*warm_args, **warm_kwargs)

    # no shrinking: a failure prints its (unshrunk) example; the suite's time stays bounded
    @settings(max_examples=SLOW.get(name, DEFAULT_EXAMPLES), deadline=None, derandomize=True,
              database=None, suppress_health_check=list(HealthCheck), print_blob=True,
              phases=(Phase.explicit, Phase.generate))
    @given(st.data())
    def run(data):
        args, kwargs = SPECS[name](data.draw)
        call_checked(name, args, kwargs)

    run()
    CALLS["names"].add(name)


def test_fuzz_call_count():
    if CALLS["names"] != set(SPECS) - set(KNOWN):
        pytest.skip("only part of the fuzz suite ran")
    assert CALLS["n"] >= 5000, CALLS["n"]


