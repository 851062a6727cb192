"""Pins on the grader: every setting a learner can pass, and every threshold the grader keeps,
changes what it does; checked by what it does, not by what it prints.

* the time limit (`--timeout`, `grade_file(timeout=)`) is the one applied to the child;
* both tolerances bind: an answer off by 1e-6 (relative) or computed in float32 fails, and
  each comparison alone is enough to fail it;
* the row's verdict is the worse of its two comparisons;
* dtype: the cases are float64 and a float32 answer is refused;
* seed: the cases and the upstream gradients are the same on every run, differ from case to
  case, and the child and the grader draw the same ones.
"""
import dataclasses
import time

import numpy as np
import pytest

from minswin.cli import main
from minswin.exercises import EXERCISES, SOLUTIONS, grade, grade_file, grader
from minswin.gradcheck import TOL_BUG

NAME = "gelu_backward"             # one gradient, graded in well under a second
RIGHT_FILE = """from minswin.ops.gelu import gelu_backward as _ref


def gelu_backward(dout, cache):
    return _ref(dout, cache)
"""


def _scaled(name, factor):
    """minswin's own answer times (1 + factor): a relative error of about factor / 2."""
    ref = SOLUTIONS[name]

    def fn(dout, cache):
        g = ref(dout, cache)
        return tuple(x * (1 + factor) for x in g) if isinstance(g, tuple) else g * (1 + factor)
    return fn


def _float32(name):
    """minswin's own answer, computed in float32 and handed back as float64."""
    ref = SOLUTIONS[name]

    def fn(dout, cache):
        g = ref(dout.astype(np.float32).astype(np.float64), cache)
        def cast(a):
            return a.astype(np.float32).astype(np.float64)
        return tuple(cast(x) for x in g) if isinstance(g, tuple) else cast(g)
    return fn


# ---------------------------------------------------------------------------- the time limit

def _spy_on_child(monkeypatch):
    seen = []
    real = grader.run_child

    def spy(ex, path, work, timeout, *rest, **kw):
        seen.append(timeout)
        return real(ex, path, work, timeout, *rest, **kw)
    monkeypatch.setattr(grader, "run_child", spy)
    return seen


def test_the_timeout_asked_for_is_the_one_the_child_gets(tmp_path, monkeypatch):
    path = tmp_path / "right.py"
    path.write_text(RIGHT_FILE)
    seen = _spy_on_child(monkeypatch)
    assert grade_file(NAME, path, out=False, timeout=7.5).passed
    assert main(["exercise", "check", NAME, str(path), "--timeout", "12.25"]) == 0
    assert main(["exercise", "check", NAME, str(path)]) == 0
    assert seen == [7.5, 12.25, grader.DEFAULT_TIMEOUT]


def test_a_short_timeout_stops_the_child_in_that_time(tmp_path):
    path = tmp_path / "slow.py"
    path.write_text("import time\ntime.sleep(60)\n")
    start = time.monotonic()
    r = grade_file(NAME, path, out=False, timeout=0.5)
    took = time.monotonic() - start
    assert r.status == "timed out" and "after 0.5 s" in r.text
    assert took < 15, f"a 0.5 s limit took {took:.1f} s: the limit applied is not the one asked"


# ---------------------------------------------------------------------------- the tolerances

@pytest.mark.parametrize("name", ["gelu_backward", "layernorm_backward"])
def test_an_answer_off_by_one_part_in_a_million_fails(name):
    r = grade(name, _scaled(name, 2e-6), out=False)
    assert r.status == "failed", r.text
    assert all(row.verdict != "ok" for row in r.rows)


@pytest.mark.parametrize("name", ["gelu_backward", "layernorm_backward"])
def test_an_answer_computed_in_float32_fails(name):
    r = grade(name, _float32(name), out=False)
    assert r.status == "failed", r.text


def test_each_tolerance_alone_fails_an_answer_off_by_1e_6():
    """Loosen one tolerance at a time: the other one still fails the answer."""
    ex = EXERCISES[NAME]
    fn = _scaled(NAME, 2e-6)
    only_numeric = dataclasses.replace(ex, ref_tol=1.0)      # vs minswin cannot fail
    only_minswin = dataclasses.replace(ex, tol=1.0)          # vs numeric cannot fail
    for loose in (only_numeric, only_minswin):
        r = grade(loose, fn, out=False)
        assert r.status == "failed", r.text
    # and with both loosened the same answer passes: the two are what failed it
    assert grade(dataclasses.replace(ex, tol=1.0, ref_tol=1.0), fn, out=False).passed


def test_the_tolerances_are_the_house_ones():
    for ex in EXERCISES.values():
        assert ex.tol <= 1e-7 and ex.ref_tol <= 1e-9, ex.name


# ---------------------------------------------------------------------------- the verdict

def test_the_verdict_is_the_worse_of_the_two_comparisons():
    """Off by 1e-8: right against central differences (<= 1e-7), not against minswin's own
    backward (> 1e-9): CHECK, and the result fails."""
    r = grade(NAME, _scaled(NAME, 2e-8), out=False)
    assert not r.passed
    for row in r.rows:
        assert row.vs_numeric <= EXERCISES[NAME].tol
        assert EXERCISES[NAME].ref_tol < row.vs_minswin < TOL_BUG
        assert row.verdict == "CHECK"
    wrong = grade(NAME, _scaled(NAME, 1e-2), out=False)      # far off: WRONG on both
    assert {row.verdict for row in wrong.rows} == {"WRONG"}


def test_a_row_failing_only_against_central_differences_is_not_ok():
    """The other side: vs minswin exact (tolerance loosened), vs numeric too far."""
    ex = dataclasses.replace(EXERCISES[NAME], ref_tol=1.0)
    r = grade(ex, _scaled(NAME, 1e-3), out=False)
    for row in r.rows:
        assert row.vs_minswin <= 1.0 and row.vs_numeric > ex.tol
        assert row.verdict == "WRONG"
    assert r.status == "failed" and "FAILED: 0 of" in r.text


# ---------------------------------------------------------------------------- dtype and seed

@pytest.mark.parametrize("name", list(EXERCISES))
def test_every_case_is_float64_and_the_same_on_every_run(name):
    ex = EXERCISES[name]
    a, b = ex.cases(), ex.cases()
    assert len(a) == len(b) >= 1
    for ca, cb in zip(a, b):
        assert ca.label == cb.label
        for k in ca.inputs:
            assert ca.inputs[k].dtype == np.float64, (name, k)
            np.testing.assert_array_equal(ca.inputs[k], cb.inputs[k])


def test_the_upstream_gradients_are_seeded_per_case():
    shape = (3, 4)
    np.testing.assert_array_equal(grader._dout(0, shape), grader._dout(0, shape))
    assert not np.allclose(grader._dout(0, shape), grader._dout(1, shape))


def test_the_child_and_the_grader_see_the_same_upstream_gradient(tmp_path):
    """The child computes the answer from the dout it was handed; the grader compares it with
    minswin's backward of the dout it drew itself: exactly equal only if the two are one."""
    path = tmp_path / "right.py"
    path.write_text(RIGHT_FILE)
    r = grade_file(NAME, path, out=False)
    assert r.passed, r.text
    assert max(row.vs_minswin for row in r.rows) == 0.0


def test_a_float32_answer_is_refused_with_the_reason():
    ref = SOLUTIONS[NAME]
    r = grade(NAME, lambda d, c: ref(d, c).astype(np.float32), out=False)
    assert r.status == "failed" and "dtype float32" in r.hint


# ---------------------------------------------------------------------------- the child, in process

def _child(tmp_path, source, monkeypatch=None):
    """child_main in this process. Its address-space limit is recorded, not applied: a hard
    RLIMIT_AS set here would hold for the rest of the test session."""
    import tempfile

    from minswin.exercises import child
    path = tmp_path / "learner.py"
    path.write_text(source)
    work = tempfile.mkdtemp(dir=tmp_path)
    limits = []
    real_limit = child._limit_memory
    child._limit_memory = limits.append
    try:
        assert child.child_main([NAME, str(path), str(1 << 30), str(work)]) == 0
    finally:
        child._limit_memory = real_limit
    assert limits == [1 << 30]                             # the limit the parent asked for
    return child.read_results(EXERCISES[NAME].cases(), str(work))


def test_the_child_hands_back_exactly_what_the_backward_returned(tmp_path):
    from minswin.exercises.child import Returned
    outcomes = _child(tmp_path, RIGHT_FILE)
    ex = EXERCISES[NAME]
    cases = ex.cases()
    assert len(outcomes) == len(cases)
    for ci, (case, o) in enumerate(zip(cases, outcomes)):
        assert isinstance(o, Returned)
        out, cache = ex.forward(**{k: v.copy() for k, v in case.inputs.items()}, **case.static)
        np.testing.assert_array_equal(o.value, SOLUTIONS[NAME](grader._dout(ci, out.shape),
                                                               cache))


def test_the_child_reports_what_was_raised_and_stops(tmp_path):
    from minswin.exercises.child import Raised
    outcomes = _child(tmp_path, "def gelu_backward(dout, cache):\n"
                                "    raise NotImplementedError('later')\n")
    assert len(outcomes) == 1 and isinstance(outcomes[0], Raised)
    assert outcomes[0].type_name == "NotImplementedError" and outcomes[0].not_implemented
    assert outcomes[0].message == "later" and "raise NotImplementedError" in \
        outcomes[0].traceback
    outcomes = _child(tmp_path, "def gelu_backward(dout, cache):\n    return 1 / 0\n")
    assert outcomes[0].type_name == "ZeroDivisionError" and not outcomes[0].not_implemented


def test_the_child_describes_values_that_are_not_arrays(tmp_path):
    from minswin.exercises.child import Foreign
    outcomes = _child(tmp_path, "def gelu_backward(dout, cache):\n"
                                "    return [dout, None, 'text']\n")
    items = outcomes[0].value
    assert isinstance(items, list) and isinstance(items[0], np.ndarray)
    assert items[1] is None and isinstance(items[2], Foreign) and items[2].type_name == "str"


def test_the_child_reports_a_file_without_the_function(tmp_path):
    from minswin.exercises.child import LoadError
    found = _child(tmp_path, "def something_else(dout, cache):\n    return dout\n")
    assert isinstance(found, LoadError) and found.status == "no function"
    assert "something_else" in found.message


# ---------------------------------------------------------------------------- found by mutmut
# Survivors of `make mutate AREA=minswin/exercises` that changed what a learner sees.

def test_a_learner_traceback_holds_the_learner_s_frames_only(tmp_path):
    def gelu_backward(dout, cache):
        raise ValueError("boom")
    r = grade(NAME, gelu_backward, out=False)
    assert r.status == "error"
    assert "in gelu_backward" in r.traceback and 'raise ValueError("boom")' in r.traceback
    assert "exercises/grader.py" not in r.traceback and "test_pin_grader.py" in r.traceback
    assert r.traceback.startswith("Traceback (most recent call last):\n")
    assert "raised ValueError on case" in r.hint and ": boom." in r.hint
    path = tmp_path / "bad_import.py"
    path.write_text("import json\njson.loads('{')\n")
    r = grade_file(NAME, path, out=False)
    assert r.status == "error" and "bad_import.py" in r.traceback
    assert "importlib" not in r.traceback and "JSONDecodeError" in r.traceback
    assert "importing your file raised:\n" + r.traceback.rstrip() in r.text
    assert "\nhint: importing " in r.text and r.rows == []
    assert r.text.startswith(f"exercise {NAME}: ") and f"({path})" in r.text.splitlines()[0]
    assert "your code printed" not in r.text


def test_not_implemented_in_process_is_reported_as_such():
    def gelu_backward(dout, cache):
        raise NotImplementedError("soon")
    r = grade(NAME, gelu_backward, out=False)
    assert r.status == "not implemented" and "(soon)" in r.hint


def test_callables_the_grader_cannot_call_are_named(tmp_path):
    class OneArgument:
        def __call__(self, dout):
            return dout
    with pytest.raises(TypeError, match=r"got OneArgument\(dout\), which cannot take the two "
                                        r"arguments .*keep the skeleton's signature"):
        grade(NAME, OneArgument(), out=False)
    with pytest.raises(TypeError, match=r"pass the function itself, as in "
                                        r"grade\('gelu_backward', gelu_backward\)"):
        grade(NAME, "gelu_backward", out=False)

    class NoSignature:                     # Python cannot tell: the call itself decides
        @property
        def __signature__(self):
            raise ValueError("no signature")

        def __call__(self, dout, cache):
            return SOLUTIONS[NAME](dout, cache)
    assert grade(NAME, NoSignature(), out=False).passed


def test_what_came_back_instead_of_an_array_is_named(tmp_path):
    r = grade(NAME, lambda d, c: "text", out=False)
    assert "dx is a str, expected a NumPy array" in r.hint
    path = tmp_path / "text.py"
    path.write_text("def gelu_backward(dout, cache):\n    return 'text'\n")
    r = grade_file(NAME, path, out=False)
    assert "dx is a str, expected a NumPy array" in r.hint


def test_the_grader_prints_where_it_is_told_and_names_the_source():
    import io
    buf = io.StringIO()
    r = grade(NAME, SOLUTIONS[NAME], out=buf, source="mine.py")
    assert buf.getvalue() == r.text + "\n"
    assert r.text.splitlines()[0] == f"exercise {NAME}: {EXERCISES[NAME].title}  (mine.py)"


def test_a_constant_multiple_is_recognised_and_nothing_else_is():
    ref = SOLUTIONS[NAME]
    r = grade(NAME, lambda d, c: 2.0 * ref(d, c), out=False)
    assert "dx is 2 times the right answer: a missing or extra constant factor" in r.hint
    r = grade(NAME, lambda d, c: -ref(d, c), out=False)
    assert "dx is -1 times the right answer (the sign is flipped)" in r.hint
    noise = np.random.default_rng(0)
    r = grade(NAME, lambda d, c: ref(d, c) + noise.standard_normal(d.shape), out=False)
    assert "times the right answer" not in r.hint
    assert grader._multiple_of(np.ones(3), np.zeros(3), 1e-9) is None     # nothing to scale
    assert grader._multiple_of(np.array([np.nan, 1.0, 1.0]), np.ones(3), 1e-9) is None
    assert grader._multiple_of(np.ones(3), np.ones(3), 1e-9) is None      # c = 1: not a mistake
    assert grader._multiple_of(3 * np.ones(3), np.ones(3), 1e-9) == pytest.approx(3.0)


def test_a_load_error_carries_its_message():
    from minswin.exercises.child import LoadError
    err = LoadError("error", "the message")
    assert str(err) == "the message" and err.tb == ""
