"""The exercise grader: right answers pass, typical wrong answers fail, nothing crashes it.

The wrong solutions below are written here on purpose (not taken from the grader's catalogue
of known mistakes), so that they test the grader rather than agree with it by construction.
"""
import ast
import dataclasses
import functools
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from minswin.cli import main
from minswin.exercises import EXERCISES, SOLUTIONS, grade, grade_file, skeleton_path
from minswin.ops.layernorm import layernorm_backward
from minswin.ops.linear import linear_backward
from minswin.ops.window import window_reverse

NAMES = list(EXERCISES)


# ---------------------------------------------------------------------------- right answers

@pytest.mark.parametrize("name", NAMES)
def test_reference_solution_passes(name):
    r = grade(name, SOLUTIONS[name], out=False)
    assert r.passed, r.text
    assert r.exit_code == 0
    assert len(r.rows) == len(EXERCISES[name].cases()) * len(EXERCISES[name].grads)
    assert max(row.vs_numeric for row in r.rows) < 1e-8      # the house "expect" band
    assert r.hint == ""


def solved_copy(name, folder):
    """A copy of the skeleton of `name` whose `raise NotImplementedError(...)` is replaced by
    a call of minswin's own answer: the learner's file stays free of any switch, and the test
    still runs every line the skeleton gives the learner (imports, the cache fields it reads)."""
    with open(skeleton_path(name)) as f:
        text = f.read()
    lines = text.split("\n")
    fn = next(n for n in ast.parse(text).body if isinstance(n, ast.FunctionDef))
    stop = next(n for n in fn.body if isinstance(n, ast.Raise))
    args = ", ".join(a.arg for a in fn.args.args)
    call = (f"{' ' * stop.col_offset}return __import__('minswin.exercises', fromlist=['x'])"
            f".solution({name!r})({args})")
    lines[stop.lineno - 1:stop.end_lineno] = [call]
    path = folder / EXERCISES[name].skeleton
    path.write_text("\n".join(lines))
    return path


@pytest.mark.parametrize("name", NAMES)
def test_skeleton_passes_with_the_reference_body(name, tmp_path):
    r = grade_file(name, str(solved_copy(name, tmp_path)), out=False)
    assert r.passed, r.text


def test_skeletons_hold_no_switch_for_the_test_suite():
    """What a learner edits is the exercise only: no environment switch to the answer."""
    for name in NAMES:
        with open(skeleton_path(name)) as f:
            text = f.read()
        assert "solution" not in text and "MINSWIN_EXERCISE" not in text, name


@pytest.mark.parametrize("name", NAMES)
def test_skeleton_defines_minswin_s_own_backward(name):
    """The function the grader asks for is minswin's own backward, under its own name, and
    the skeleton defines exactly that function."""
    ex = EXERCISES[name]
    assert ex.function.endswith("_backward") and ex.function != "<lambda>"
    with open(skeleton_path(name)) as f:
        defined = [node.name for node in ast.parse(f.read()).body
                   if isinstance(node, ast.FunctionDef)]
    assert defined == [ex.function], defined


@pytest.mark.parametrize("name", NAMES)
def test_bare_skeleton_is_reported_not_raised(name, monkeypatch):
    monkeypatch.delenv("MINSWIN_EXERCISE_SOLUTION", raising=False)
    r = grade_file(name, skeleton_path(name), out=False)
    assert r.status == "not implemented" and r.exit_code == 1
    assert "NotImplementedError" in r.traceback
    assert EXERCISES[name].function in r.hint


# ---------------------------------------------------------------------------- wrong answers

def ln_no_variance(dout, cache):
    xhat, rstd, gamma = cache
    C = xhat.shape[-1]
    g = dout * gamma
    dx = rstd * (g - g.mean(-1, keepdims=True))                    # variance path missing
    return dx, (dout * xhat).reshape(-1, C).sum(0), dout.reshape(-1, C).sum(0)


def ln_swapped_params(dout, cache):
    dx, dgamma, dbeta = layernorm_backward(dout, cache)
    return dx, dbeta, dgamma                                       # dgamma <-> dbeta


def softmax_no_sum(dout, cache):
    return cache.out * dout


def softmax_wrong_axis(dout, cache):
    p = cache.out
    return p * (dout - (dout * p).sum(axis=0, keepdims=True))       # sums over the batch


def gelu_no_xphi(dout, cache):
    return dout * cache.cdf


def gelu_tanh(dout, cache):
    x = cache.x
    k = np.sqrt(2 / np.pi)
    u = k * (x + 0.044715 * x ** 3)
    t = np.tanh(u)
    return dout * (0.5 * (1 + t) + 0.5 * x * (1 - t ** 2) * k * (1 + 0.134145 * x ** 2))


def _attn(dout, cache, scale=True, dbias_first_window=False):
    q, k, v, a = cache.q, cache.k, cache.v, cache.attn.out
    B_, nH, N, d = q.shape
    do, dpw, dpb = linear_backward(dout, cache.proj)
    do = do.reshape(B_, N, nH, d).transpose(0, 2, 1, 3)
    da = do @ np.swapaxes(v, -1, -2)
    dv = np.swapaxes(a, -1, -2) @ do
    ds = a * (da - (da * a).sum(-1, keepdims=True))
    dbias = ds[0].copy() if dbias_first_window else ds.sum(0)
    dq = ds @ k * (cache.scale if scale else 1.0)
    dk = np.swapaxes(ds, -1, -2) @ q
    dqkv = np.stack([dq, dk, dv], axis=2)                          # (B_, nH, 3, N, d)
    dqkv = dqkv.transpose(0, 3, 2, 1, 4).reshape(B_, N, 3 * nH * d)
    dx, dqw, dqb = linear_backward(dqkv, cache.qkv)
    return dx, dqw, dqb, dpw, dpb, dbias


def attn_right(dout, cache):
    return _attn(dout, cache)


def attn_forgets_scale(dout, cache):
    return _attn(dout, cache, scale=False)


def attn_dbias_one_window(dout, cache):
    return _attn(dout, cache, dbias_first_window=True)


def relbias_assigns(dbias, cache):
    nH, N, _ = dbias.shape
    dtable = np.zeros((cache.rows, nH))
    for i in range(N):
        for j in range(N):
            dtable[cache.index[i, j]] = dbias[:, i, j]             # = instead of +=
    return dtable


def relbias_right_loop(dbias, cache):
    nH, N, _ = dbias.shape
    dtable = np.zeros((cache.rows, nH))
    for i in range(N):
        for j in range(N):
            dtable[cache.index[i, j]] += dbias[:, i, j]
    return dtable


def relbias_fancy_index(dbias, cache):
    nH, N, _ = dbias.shape
    dtable = np.zeros((cache.rows, nH))
    dtable[cache.index.ravel()] += dbias.transpose(1, 2, 0).reshape(-1, nH)
    return dtable


def _merge(dout, cache, order, crop=True, ln=layernorm_backward):
    dn, dred, _ = linear_backward(dout, cache.reduction)
    dm, dg, db = ln(dn, cache.norm)
    B, h, w, C4 = dm.shape
    C = C4 // 4
    dx = np.zeros((B, 2 * h, 2 * w, C))
    for blk, (r0, c0) in enumerate(order):
        dx[:, r0::2, c0::2] = dm[..., blk * C:(blk + 1) * C]
    H, W = cache.hw
    return (dx[:, :H, :W] if crop else dx), dg, db, dred


def merge_right(dout, cache):
    return _merge(dout, cache, [(0, 0), (1, 0), (0, 1), (1, 1)])


def merge_row_major(dout, cache):
    return _merge(dout, cache, [(0, 0), (0, 1), (1, 0), (1, 1)])  # TL, TR, BL, BR


def merge_no_crop(dout, cache):
    return _merge(dout, cache, [(0, 0), (1, 0), (0, 1), (1, 1)], crop=False)


def merge_ln_no_variance(dout, cache):
    return _merge(dout, cache, [(0, 0), (1, 0), (0, 1), (1, 1)], ln=ln_no_variance)


def _shift(dtokens, cache, sign, crop=True):
    M, (Hp, Wp), (H, W) = cache.window, cache.padded_hw, cache.hw
    x = window_reverse(dtokens.reshape(-1, M, M, dtokens.shape[-1]), M, Hp, Wp)
    x = np.roll(x, (sign * cache.shift[0], sign * cache.shift[1]), axis=(1, 2))
    return x[:, :H, :W] if crop else x


def shift_right(dtokens, cache):
    return _shift(dtokens, cache, +1)


def shift_wrong_way(dtokens, cache):
    return _shift(dtokens, cache, -1)


def shift_no_crop(dtokens, cache):
    return _shift(dtokens, cache, +1, crop=False)


RIGHT = [("window_attention_backward", attn_right),
         ("relative_bias_backward", relbias_right_loop),
         ("patch_merging_backward", merge_right),
         ("shift_partition_backward", shift_right)]

# (exercise, wrong backward, a fragment the hint must contain)
WRONG = [
    ("layernorm_backward", ln_no_variance, "variance"),
    ("layernorm_backward", ln_swapped_params, "dgamma"),
    ("softmax_backward", softmax_no_sum, "treats each p_i as a function of s_i alone"),
    ("softmax_backward", softmax_wrong_axis, "ds"),
    ("gelu_backward", gelu_no_xphi, "product"),
    ("gelu_backward", gelu_tanh, "approximation"),
    ("window_attention_backward", attn_forgets_scale, "multiplies q"),
    ("window_attention_backward", attn_dbias_one_window, "dbias"),
    ("relative_bias_backward", relbias_assigns, "dtable"),
    ("relative_bias_backward", relbias_fancy_index, "only one"),
    ("patch_merging_backward", merge_row_major, "order"),
    ("patch_merging_backward", merge_no_crop, "crop"),
    ("patch_merging_backward", merge_ln_no_variance, "variance"),
    ("shift_partition_backward", shift_wrong_way, "inverse roll"),
    ("shift_partition_backward", shift_no_crop, "crop"),
]


@pytest.mark.parametrize("name, fn", RIGHT, ids=[f"{n}-{f.__name__}" for n, f in RIGHT])
def test_independent_right_answers_pass(name, fn):
    r = grade(name, fn, out=False)
    assert r.passed, r.text


@pytest.mark.parametrize("name, fn, fragment", WRONG,
                         ids=[f"{n}-{f.__name__}" for n, f, _ in WRONG])
def test_typical_wrong_answers_fail_with_a_hint(name, fn, fragment):
    r = grade(name, fn, out=False)
    assert r.status == "failed" and r.exit_code == 1, r.text
    assert fragment in r.hint, r.hint
    assert r.text.count("hint:") == 1                              # exactly one hint
    assert "FAILED" in r.text


CROP_MISSING = [("patch_merging_backward", merge_no_crop),
                ("shift_partition_backward", shift_no_crop)]


@pytest.mark.parametrize("name, fn", CROP_MISSING, ids=[n for n, _ in CROP_MISSING])
def test_crop_hint_does_not_read_the_case_labels(name, fn):
    """The labels are for people: renaming them keeps the crop hint on the padded case."""
    ex = EXERCISES[name]
    relabelled = dataclasses.replace(
        ex, make_cases=lambda: [c._replace(label=f"case {i}") for i, c in enumerate(ex.cases())])
    r = grade(relabelled, fn, out=False)
    assert r.status == "failed" and "Here " + ex.shape_hint in r.hint, r.hint


@pytest.mark.parametrize("name", [n for n, _ in CROP_MISSING])
def test_padded_cases_are_the_ones_the_forward_pads(name):
    ex = EXERCISES[name]
    flags = []
    for case in ex.cases():
        out, cache = ex.forward(**case.inputs, **case.static)
        padded_hw = getattr(cache, "padded_hw", (2 * out.shape[1], 2 * out.shape[2]))
        flags.append(case.padded)
        assert case.padded == (tuple(padded_hw) != tuple(cache.hw)), case.label
    assert any(flags) and not all(flags)


def test_first_wrong_gradient_is_named_with_the_right_ones():
    """dgamma/dbeta right, dx wrong in an unrecognised way: the hint says which is which."""
    def dx_doubled(dout, cache):
        dx, dg, db = layernorm_backward(dout, cache)
        return 2 * dx, dg, db
    r = grade("layernorm_backward", dx_doubled, out=False)
    assert "dgamma, dbeta are right but dx is not" in r.hint
    assert "2 times" in r.hint


def test_hint_reuses_what_grade_built():
    """A gradient right on the first case only: the hint says so, and building it neither
    rebuilds the cases nor reruns minswin's backward (once per case, in the table)."""
    ex = EXERCISES["layernorm_backward"]
    calls = {"cases": 0, "reference": 0}

    def counted_cases():
        calls["cases"] += 1
        return ex.make_cases()

    @functools.wraps(layernorm_backward)
    def counted_reference(dout, cache):
        calls["reference"] += 1
        return layernorm_backward(dout, cache)

    counted = dataclasses.replace(ex, make_cases=counted_cases, reference=counted_reference)
    first_shape = ex.cases()[0].inputs["x"].shape

    def right_on_first_case_only(dout, cache):
        dx, dg, db = layernorm_backward(dout, cache)
        return (dx if dout.shape == first_shape else 2 * dx), dg, db

    r = grade(counted, right_on_first_case_only, out=False)
    assert r.status == "failed"
    assert f"dx is right on '{ex.cases()[0].label}' but not on '{ex.cases()[1].label}'" in r.hint
    assert calls == {"cases": 1, "reference": len(ex.cases())}, calls


# ---------------------------------------------------------------------------- never crash

def test_exception_in_backward_is_reported():
    def boom(dout, cache):
        return 1 / 0
    r = grade("gelu_backward", boom, out=False)
    assert r.status == "error" and r.exit_code == 1
    assert "ZeroDivisionError" in r.traceback and "ZeroDivisionError" in r.text


@pytest.mark.parametrize("ret, fragment", [(None, "None"), ((1, 2), "must return 3"),
                                           ("junk", "must return 3")])
def test_malformed_return_is_reported(ret, fragment):
    r = grade("layernorm_backward", lambda dout, cache: ret, out=False)
    assert r.status == "failed" and fragment in r.hint, r.hint


def test_float32_and_wrong_shape_are_reported():
    r = grade("gelu_backward", lambda d, c: (d * c.cdf).astype(np.float32), out=False)
    assert r.status == "failed" and "float64" in r.hint
    r = grade("gelu_backward", lambda d, c: d[..., None], out=False)
    assert r.status == "failed" and "shape" in r.hint


@pytest.mark.parametrize("fn, came", [(3, "an object of type int"),
                                      (np.zeros(3), "an object of type ndarray"),
                                      ("gelu_backward", "an object of type str"),
                                      (lambda dout: dout, "<lambda>(dout)")],
                         ids=["int", "array", "name", "one-argument"])
def test_fn_that_cannot_be_called_as_the_backward_is_a_clear_type_error(fn, came):
    with pytest.raises(TypeError) as err:
        grade("gelu_backward", fn, out=False)
    msg = str(err.value)
    assert msg.startswith("fn: expected the backward function, called as "
                          "gelu_backward(dout, cache), got " + came), msg
    assert "raised" not in msg and "traceback" not in msg            # not the learner's maths


@pytest.mark.parametrize("source, came", [("gelu_backward = 3\n", "an object of type int"),
                                          ("def gelu_backward(dout):\n    return dout\n",
                                           "gelu_backward(dout)")],
                         ids=["not-a-function", "one-argument"])
def test_file_whose_function_cannot_be_called_is_reported(tmp_path, capsys, source, came):
    path = tmp_path / "ex_gelu_backward.py"
    path.write_text(source)
    r = grade_file("gelu_backward", path, out=False)
    assert r.status == "no function" and r.exit_code == 1
    assert (f"{path}: expected `gelu_backward` to be a function called as "
            f"gelu_backward(dout, cache), got {came}") in r.hint, r.hint
    assert main(["exercise", "check", "gelu_backward", str(path)]) == 1
    assert came in capsys.readouterr().out


def test_broken_files_are_reported(tmp_path):
    bad = tmp_path / "ex_bad.py"
    bad.write_text("def gelu_backward(dout, cache)\n    return dout\n")   # syntax error
    r = grade_file("gelu_backward", bad, out=False)
    assert r.status == "error" and "SyntaxError" in r.text
    other = tmp_path / "ex_other.py"
    other.write_text("def something_else(dout, cache):\n    return dout\n")
    r = grade_file("gelu_backward", other, out=False)
    assert r.status == "no function" and "something_else" in r.hint
    exits = tmp_path / "ex_exit.py"
    exits.write_text("import sys\nsys.exit(3)\n")
    assert grade_file("gelu_backward", exits, out=False).status == "error"


# ---------------------------------------------------------------------------- the CLI

RIGHT_FILE = """from minswin.ops.gelu import gelu_backward as _ref

def gelu_backward(dout, cache):
    return _ref(dout, cache)
"""
WRONG_FILE = """def gelu_backward(dout, cache):
    return dout * cache.cdf
"""


def test_cli_list_start_check(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MINSWIN_EXERCISE_SOLUTION", raising=False)
    assert main(["exercise", "list"]) == 0
    assert "window_attention_backward" in capsys.readouterr().out
    assert main(["exercise", "start", "gelu_backward", str(tmp_path)]) == 0
    path = tmp_path / "ex_gelu_backward.py"
    assert path.exists()
    assert main(["exercise", "start", "gelu_backward", str(tmp_path)]) == 2     # no overwrite
    assert "already exists" in capsys.readouterr().err
    assert main(["exercise", "check", "gelu_backward", str(path)]) == 1        # the stub
    assert "NOT IMPLEMENTED" in capsys.readouterr().out
    right, wrong = tmp_path / "right.py", tmp_path / "wrong.py"
    right.write_text(RIGHT_FILE)
    wrong.write_text(WRONG_FILE)
    assert main(["exercise", "check", "gelu_backward", str(right)]) == 0
    assert "PASSED" in capsys.readouterr().out
    assert main(["exercise", "check", "gelu_backward", str(wrong)]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "verdict" in out and "hint:" in out


def test_cli_bad_arguments(tmp_path, capsys):
    assert main(["exercise", "check", "no_such_exercise", "x.py"]) == 2
    assert main(["exercise", "start", "no_such_exercise"]) == 2
    assert main(["exercise", "check", "gelu_backward", str(tmp_path / "missing.py")]) == 2
    (tmp_path / "a_file").write_text("")
    assert main(["exercise", "start", "gelu_backward", str(tmp_path / "a_file")]) == 2
    err = capsys.readouterr().err
    assert err.count("minswin exercise: error:") == 4
    assert "DIR: expected a directory, got the file" in err
    # a folder that does not exist yet is created (the README's `start NAME my_exercises/`)
    assert main(["exercise", "start", "gelu_backward", str(tmp_path / "new" / "dir")]) == 0
    assert (tmp_path / "new" / "dir" / "ex_gelu_backward.py").exists()


# ---------------------------------------------------------------------------- the catalogue

@pytest.mark.parametrize("name", NAMES)
def test_every_known_mistake_runs_is_wrong_and_gets_its_own_hint(name):
    """Each mistake of the catalogue (an edit of the plain backward) runs on every case, is
    wrong somewhere, and, handed in as an answer, is recognised: its own hint is shown. The
    grader swallows a mistake that raises, so without this a broken edit would go unseen."""
    ex = EXERCISES[name]
    assert ex.mistakes
    for m in ex.mistakes:
        r = grade(name, m.backward, out=False)
        assert not r.passed, m.what
        assert m.hint.ask in r.hint, (m.what, r.hint)


def test_an_edit_that_no_longer_applies_is_an_error():
    from minswin.exercises.catalog import edited
    from minswin.ops.softmax import softmax_backward
    with pytest.raises(ValueError, match="occurs 0 times in softmax_backward, expected once"):
        edited(softmax_backward, ("no such line", ""))
    wrong = edited(softmax_backward, ("(dout - (dout * p).sum(axis=-1, keepdims=True))", "dout"))
    p = np.array([[0.25, 0.75]])
    np.testing.assert_allclose(wrong(np.ones((1, 2)), type("C", (), {"out": p})), p)


# ---------------------------------------------------------------------------- hints in levels

def _all_hints():
    """(exercise, what, Hint) for every known mistake and every generic hint."""
    for name, ex in EXERCISES.items():
        for m in ex.mistakes:
            yield name, m.what, m.hint
        for gname, h in ex.hints.items():
            yield name, gname, h


_CALL = re.compile(r"[\w.\]]+\([^()]*\)")                  # mean(dxhat), np.add.at(...)
_BINARY = re.compile(r"[\w.\])]+ [-+*/@] [\w.(]+")         # dxhat * xhat, ds @ k


def _expressions(formula):
    """The pieces of code in a formula: its calls, binary products and assignments."""
    return [e for e in _CALL.findall(formula) + _BINARY.findall(formula) if len(e) > 3]


def test_no_first_level_hint_contains_the_expression():
    """Level 1 is a question that names a path or a forward line in words: no piece of the
    formula, no code at all (no '=', no operator between names, no call)."""
    seen = 0
    for name, what, h in _all_hints():
        assert h.ask.rstrip().endswith("?"), (name, what, h.ask)
        for e in _expressions(h.formula):
            assert e not in h.ask and e not in h.term, (name, what, e)
        for text in (h.ask, h.term):
            assert "=" not in text and not _CALL.search(text) and not _BINARY.search(text), \
                (name, what, text)
        seen += 1
    assert seen >= 50
    # the examples of the issue, word for word
    asks = " ".join(h.ask + h.term for _, _, h in _all_hints())
    for answer in ("mean(dxhat)", "sum(da * a", "xhat * mean(dxhat * xhat)", "np.add.at",
                   "ds @ k * cache.scale"):
        assert answer not in asks


def test_the_hint_levels_lead_to_the_formula(tmp_path):
    """The default hint asks; hint=2 names the term; only hint=3 (--reveal) shows the formula
    and says so. The same answer graded three times, in a notebook and from the command line."""
    from minswin.exercises.catalog import _ln_no_mean
    m = next(m for m in EXERCISES["layernorm_backward"].mistakes if m.what == "no mean term")
    texts = [grade("layernorm_backward", _ln_no_mean, out=False, hint=k).hint for k in (1, 2, 3)]
    assert m.hint.ask in texts[0] and "--hint 2" in texts[0] and "mean(dxhat)" not in texts[0]
    assert m.hint.term in texts[1] and "--reveal" in texts[1] and "mean(dxhat)" not in texts[1]
    assert m.hint.formula in texts[2] and "--reveal" in texts[2] and "mean(dxhat)" in texts[2]
    with pytest.raises(ValueError, match=r"hint: expected 1 .* got 4"):
        grade("layernorm_backward", _ln_no_mean, out=False, hint=4)
    f = tmp_path / "ex.py"
    f.write_text("import numpy as np\n\n"
                 "def layernorm_backward(dout, cache):\n"
                 "    gamma, xhat, rstd = cache.gamma, cache.xhat, cache.rstd\n"
                 "    dxhat = dout * gamma\n"
                 "    dx = rstd * (dxhat - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))\n"
                 "    axes = tuple(range(dout.ndim - 1))\n"
                 "    return dx, (dout * xhat).sum(axes), dout.sum(axes)\n")
    env = dict(os.environ, MPLBACKEND="Agg")
    out = {}
    for flags in ((), ("--hint", "2"), ("--reveal",)):
        p = subprocess.run([sys.executable, "-m", "minswin", "exercise", "check",
                            "layernorm_backward", str(f), *flags],
                           capture_output=True, text=True, env=env, timeout=120)
        assert p.returncode == 1, p.stderr
        out[flags] = p.stdout.split("hint: ")[-1]
    assert "mean(dxhat)" not in out[()] and "mean(dxhat)" not in out[("--hint", "2")]
    assert "mean(dxhat)" in out[("--reveal",)] and "--reveal" in out[("--reveal",)]
    p = subprocess.run([sys.executable, "-m", "minswin", "exercise", "check",
                        "layernorm_backward", str(f), "--hint", "3"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2 and p.stdout == "" and len(p.stderr.strip().splitlines()) == 1
    assert "--hint: expected 1" in p.stderr and "--reveal" in p.stderr, p.stderr
