"""The grader: run minswin's forward, call the learner's backward, compare, explain.

For every case of an exercise (float64, small shapes, with masks, shifts and padding where
they matter) the grader
1. runs minswin's forward to get `(out, cache)` and draws a random upstream gradient `dout`;
2. calls the learner's `backward(dout, cache)` (any exception is caught and shown);
3. checks that it returned the right number of arrays with the right shapes;
4. compares every gradient with central differences (`minswin.gradcheck.check_op`) and with
   minswin's own backward (`rel_error`), and prints one table row per gradient.

Only the first failure gets a hint. A wrong gradient that equals one of the exercise's known
mistakes (to round-off) gets that mistake's explanation; otherwise the gradient's generic hint,
with what the grader can see (which gradients are right, which case first fails, whether the
answer is a constant multiple of the right one).

Hints come in levels (`catalog.Hint`): by default a question naming the forward line or path
to look at; `hint=2` (`--hint 2`) names the term; `hint=3` (`--reveal`) gives the formula.

A result passes only when every gradient of every case passes both comparisons.

Isolation. `grade_file` (and so `minswin exercise check`) runs the learner's file in a child
process with a time limit (see `child.py`): the child only calls the backward and hands back
its arrays. Every comparison, verdict and exit code is computed here, in the grader's own
process, so `os._exit`, `sys.exit`, patching the grader, endless loops, floods of output,
crashes in native code and forged result files each end as a FAILED line and exit code 1. The
child gets a memory limit (`memory`), every process it starts is ended with it (also one in a
session of its own: process_tree.py), its results are read only from regular files of bounded
size within the time limit, and everything shown has terminal escape sequences escaped. The
child is not a sandbox: it can still read and write files like any program you run.
`grade(exercise, fn)` grades a function that already lives in your process (a notebook) and
runs it there.
"""
import os
import shutil
import stat
import sys
import tempfile
import time
from typing import NamedTuple

import numpy as np

from ..checks import escape_controls
from ..gradcheck import TOL_BUG, check_op, rel_error, verdict
from .catalog import Hint, get_exercise
from .child import (
    MAX_OUTPUT,
    OUT_OF_MEMORY,
    Foreign,
    Unreadable,
    default_memory,
    read_results,
    run_child,
    signal_name,
)
from .learner import (
    LoadError,
    Raised,
    Returned,
    _call_problem,
    _dout,
    _fresh,
    call_learner,
    load_function,
)

# the grader's API keeps these names (they live in learner.py, shared with the child)
__all__ = ["DEFAULT_TIMEOUT", "GradeResult", "LoadError", "Raised", "Returned", "Row",
           "call_learner", "check_file", "check_hint_level", "check_memory", "check_timeout",
           "grade", "grade_file", "hint_text", "load_function"]

DEFAULT_TIMEOUT = 30.0     # seconds for a whole file; every exercise grades in under 1 s

# importing and calling the learner's file (load_function, call_learner): learner.py, shared
# with the child process


class Row(NamedTuple):
    case: str
    grad: str
    shape: tuple
    vs_numeric: float      # rel_error against central differences
    vs_minswin: float      # rel_error against minswin's backward
    verdict: str           # ok / CHECK / WRONG


class GradeResult(NamedTuple):
    exercise: str
    status: str            # passed / failed / error / not implemented / no function;
                           # grade_file also: timed out / crashed / exited / too much output /
                           # out of memory / unreadable (the child's results had the wrong form)
    rows: list
    hint: str              # "" when passed
    traceback: str         # the learner's traceback, "" when nothing raised
    text: str              # everything that was printed

    @property
    def passed(self):
        return self.status == "passed"

    @property
    def exit_code(self):
        return 0 if self.passed else 1


# ---------------------------------------------------------------------------- checking

def _run_backward(backward, ex, case, dout):
    """One of our own backward passes (minswin's, or a known mistake) on a cache of its own,
    as a tuple of gradients. A fresh cache each time: the learner's backward was handed the
    first one and may have changed its arrays in place."""
    _, cache = _fresh(case, ex)
    grads = backward(dout.copy(), cache)
    return (grads,) if len(ex.grads) == 1 else tuple(grads)


def _type_name(value):
    return value.type_name if isinstance(value, Foreign) else type(value).__name__


def _as_grads(result, ex, case):
    """The learner's return value as a tuple of float64 arrays, or (None, problem)."""
    n = len(ex.grads)
    want = ", ".join(ex.grads)
    if n == 1 and isinstance(result, (tuple, list)) and len(result) == 1:
        result = result[0]
    grads = (result,) if n == 1 else result
    if not isinstance(grads, (tuple, list)) or len(grads) != n:
        got = (f"a {type(result).__name__} of length {len(result)}"
               if isinstance(result, (tuple, list)) else f"a single {_type_name(result)}")
        return None, (f"{ex.function} must return {n} value{'s' * (n > 1)} ({want}), got "
                      f"{got}")
    out = []
    for gname, g, (iname, x) in zip(ex.grads, grads, case.inputs.items()):
        if g is None:
            return None, f"{gname} is None: return the gradient of `{iname}` ({want})"
        if not isinstance(g, np.ndarray):
            return None, (f"{gname} is a {_type_name(g)}, expected a NumPy array of shape "
                          f"{tuple(x.shape)}")
        if g.shape != x.shape:
            msg = (f"{gname} has shape {tuple(g.shape)} but `{iname}` has shape "
                   f"{tuple(x.shape)}: a gradient always has the shape of what it is the "
                   f"gradient of")
            if case.padded and ex.shape_hint:
                msg += ". Here " + ex.shape_hint
            return None, msg
        if g.dtype != np.float64:
            return None, (f"{gname} has dtype {g.dtype}: keep float64 (the checks compare to "
                          f"1e-9, which float32 cannot reach)")
        out.append(g)
    return tuple(out), ""


_ORDER = {"ok": 0, "CHECK": 1, "WRONG": 2}


REVEAL = 3                 # the hint level that shows the formula (`--reveal`)


def check_hint_level(hint):
    """A hint level: 1 (a question), 2 (the term) or 3 (the formula, `--reveal`)."""
    if isinstance(hint, bool) or hint not in (1, 2, REVEAL):
        raise ValueError(f"hint: expected 1 (a question), 2 (the term) or 3 (the formula), "
                         f"got {hint!r}")
    return hint


def hint_text(hint, level):
    """The words of a catalogue Hint at `level`; each level says how to ask for the next."""
    if level >= REVEAL:
        return "the formula (shown because you asked for --reveal): " + hint.formula
    if level == 2:
        return hint.term + " (the formula: --reveal)"
    return hint.ask + " (closer: --hint 2)"


def _multiple_of(g, ref, tol):
    """c if g == c * ref to round-off (rel_error <= tol) for a constant c != 1, else None."""
    den = float((ref * ref).sum())
    if den == 0.0 or not np.all(np.isfinite(g)):
        return None
    c = float((g * ref).sum()) / den
    if abs(c - 1.0) < 1e-6 or rel_error(g, c * ref) > tol:
        return None
    return c


def _diagnose(ex, case, dout, grads, ref, verdicts, first_case_rows, level=1):
    """The one hint for the first wrong gradient of `case`, at hint `level`.

    grads: the learner's gradients and ref: minswin's, both for this `dout`; verdicts: one per
    gradient; first_case_rows: the table rows of the first case when `case` is a later one,
    else None.
    """
    gi = next(i for i, v in enumerate(verdicts) if v != "ok")
    gname = ex.grads[gi]
    # 1. a known mistake, recognised by its numbers
    for m in ex.mistakes:
        try:
            wrong = _run_backward(m.backward, ex, case, dout)
            if (rel_error(wrong[gi], ref[gi]) > ex.ref_tol
                    and rel_error(grads[gi], wrong[gi]) <= ex.ref_tol):
                return f"{gname}: {hint_text(m.hint, level)}"
        except Exception:                                 # a catalogue entry must not crash
            continue
    # 2. what can be seen from the numbers
    g, r = grads[gi], ref[gi]
    notes = []
    passed_here = [name for name, v in zip(ex.grads, verdicts) if v == "ok"]
    if passed_here:
        are = "is" if len(passed_here) == 1 else "are"
        notes.append(f"{', '.join(passed_here)} {are} right but {gname} is not")
    if first_case_rows and first_case_rows[gi].verdict == "ok":
        notes.append(f"{gname} is right on '{first_case_rows[gi].case}' but not on "
                     f"'{case.label}'")
    if not np.all(np.isfinite(g)):
        notes.append(f"{gname} contains NaN or inf")
    elif not np.any(g) and np.any(r):
        notes.append(f"{gname} is all zeros")
    else:
        c = _multiple_of(g, r, ex.ref_tol)
        if c is not None:
            notes.append(f"{gname} is {c:.4g} times the right answer"
                         + (" (the sign is flipped)" if abs(c + 1) < 1e-6 else
                            ": a missing or extra constant factor"))
    head = "; ".join(notes)
    generic = ex.hints.get(gname)
    return (head + ". " if head else f"{gname} is wrong. ") + \
        (hint_text(generic, level) if isinstance(generic, Hint) else "")


def _format_table(rows, ex):
    w = max([len("case")] + [len(r.case) for r in rows])
    head = (f"{'case':<{w}}  {'gradient':<18} {'shape':<14} {'vs numeric':>10} "
            f"{'vs minswin':>10}  verdict")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.case:<{w}}  {r.grad:<18} {str(r.shape):<14} {r.vs_numeric:10.2e} "
                     f"{r.vs_minswin:10.2e}  {r.verdict}")
    return lines


# ---------------------------------------------------------------------------- judging

def _header(ex, source):
    return [f"exercise {ex.name}: {ex.title}" + (f"  ({source})" if source else "")]


def _printed_lines(printed):
    return ["your code printed:", printed.rstrip(), ""] if printed.strip() else []


def _cases(ex):
    try:
        return ex.cases()
    except Exception as err:                               # pragma: no cover - our own bug
        raise RuntimeError(f"exercise {ex.name}: building the cases failed: {err}") from err


def _judge(ex, cases, outcomes, *, source=None, printed="", level=1):
    """Compare what the learner's backward returned (`outcomes`, from call_learner) with
    central differences and with minswin's backward: (status, rows, hint, traceback, text).
    Every number here is computed in this process, from the catalogue's own cases."""
    lines = _header(ex, source) + [
        f"checking {ex.function}(dout, cache) -> {', '.join(ex.grads)}  [float64]",
        f"relative error = max|a-b| / (max|a| + max|b|); expected: <= {ex.tol:.0e} vs "
        f"central differences (typically 1e-9 to 1e-12), <= {ex.ref_tol:.0e} vs "
        f"minswin's own backward; above {TOL_BUG:.0e} is a bug", ""]
    lines += _printed_lines(printed)
    rows, status, hint, tb, after = [], "passed", "", "", []
    for ci, (case, outcome) in enumerate(zip(cases, outcomes)):
        out_arr, _ = _fresh(case, ex)
        dout = _dout(ci, out_arr.shape)
        if isinstance(outcome, Raised):
            tb = outcome.traceback
            if outcome.not_implemented:
                status = "not implemented"
                why = (f"{ex.function} is not written yet ({outcome.message}). Replace the "
                       "`raise NotImplementedError` with your code and check again")
            else:
                status = "error"
                why = (f"{ex.function} raised {outcome.type_name} on case '{case.label}'"
                       f": {outcome.message}. Read the traceback above; every array in the "
                       f"cache is described in the skeleton's docstring")
                if outcome.type_name == "MemoryError":
                    why += (". The file runs with a memory limit (minswin exercise check "
                            "--memory); every exercise needs a few megabytes")
            hint = hint or why                             # the first failure keeps the hint
            break
        grads, problem = _as_grads(outcome.value, ex, case)
        if grads is None:
            status = "failed"
            after.append(f"stopped at case '{case.label}': its result is malformed")
            hint = hint or problem
            break
        report = check_op(ex.forward, lambda d, c, g=grads: g,
                          {k: v.copy() for k, v in case.inputs.items()}, static=case.static,
                          dout=dout, tol=ex.tol, title=ex.name)
        ref = _run_backward(ex.reference, ex, case, dout)
        verdicts = []
        for gname, g, r, row in zip(ex.grads, grads, ref, report.rows):
            e_ref = rel_error(g, r)
            v = max(verdict(row.rel_error, ex.tol), verdict(e_ref, ex.ref_tol),
                    key=_ORDER.get)
            rows.append(Row(case.label, gname, tuple(g.shape), row.rel_error, e_ref, v))
            verdicts.append(v)
        if status == "passed" and any(v != "ok" for v in verdicts):   # the first failure
            first_case_rows = rows[:len(ex.grads)] if ci > 0 else None
            hint = _diagnose(ex, case, dout, grads, ref, verdicts, first_case_rows, level)
            status = "failed"
    if rows:
        lines += _format_table(rows, ex)
        lines.append("")
    if tb:
        lines += [f"your code raised (case '{case.label}'):", tb.rstrip(), ""]
    lines += after
    n_ok = sum(r.verdict == "ok" for r in rows)
    total = len(cases) * len(ex.grads)
    verdicts = {"passed": f"PASSED: all {total} checks ok. Well done!",
                "failed": f"FAILED: {n_ok} of {total} checks ok",
                "error": "ERROR: your backward raised an exception",
                "not implemented": "NOT IMPLEMENTED yet"}
    lines.append(verdicts[status])
    if hint:
        lines.append("hint: " + hint)
    return status, rows, hint, tb, "\n".join(lines)


def _result(ex, status, rows, hint, tb, text, out):
    hint, tb, text = escape_controls(hint), escape_controls(tb), escape_controls(text)
    if out is not False:
        print(text, file=out or sys.stdout)
    return GradeResult(ex.name, status, rows, hint, tb, text)


def grade(exercise, fn, *, source=None, out=None, hint=1):
    """Grade the backward `fn` for `exercise` (a name or an Exercise); print and return a
    GradeResult. Nothing the learner's code does (raise, return junk) escapes as an exception;
    an `fn` that cannot be called as fn(dout, cache) is a TypeError before anything runs.

    `fn` runs in this process (it already lives here, e.g. in a notebook); to grade a file
    in a child process with a time limit, use `grade_file`.
    source: the file the function came from (only for the messages). out: where to print
    (default sys.stdout; pass False to print nothing). hint: 1 (a question), 2 (the term) or
    3 (the formula).
    """
    ex = get_exercise(exercise)
    level = check_hint_level(hint)
    problem = _call_problem(fn)
    if problem:
        advice = (f"pass the function itself, as in grade({ex.name!r}, {ex.function}), not "
                  f"its name or what it returns" if not callable(fn) else
                  "keep the skeleton's signature")
        raise TypeError(f"fn: expected the backward function, called as {ex.function}(dout, "
                        f"cache), got {problem}; {advice}")
    cases = _cases(ex)
    return _result(ex, *_judge(ex, cases, call_learner(ex, fn, cases), source=source,
                               level=level), out)


def _failure(ex, path, status, verdict_line, hint, *, printed="", tb="", out=None):
    """A GradeResult for a file that could not be graded (no table)."""
    lines = _header(ex, path) + _printed_lines(printed)
    if tb:
        lines += ["importing your file raised:", tb.rstrip()]
    lines.append(verdict_line)
    if hint:
        lines.append("hint: " + hint)
    return _result(ex, status, [], hint, tb, "\n".join(lines), out)


def check_timeout(timeout):
    """A time limit in seconds: a finite number > 0."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or not 0 < timeout < float("inf"):
        raise ValueError(f"timeout: expected a number of seconds > 0, got {timeout!r}")
    return float(timeout)


def check_memory(memory):
    """A memory limit in bytes: an integer > 0 (None: child.default_memory())."""
    if memory is None:
        return default_memory()
    if isinstance(memory, bool) or not isinstance(memory, int) or memory <= 0:
        raise ValueError(f"memory: expected a number of bytes > 0, got {memory!r}")
    return memory


def _remove_work(work):
    """Remove the grader's work folder, whatever the learner's code made of it (a file, a
    link, read-only folders): never follows a link out of it."""
    try:
        info = os.lstat(work)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(info.st_mode):
        os.unlink(work)
        return

    def writable_then_retry(func, p, exc_info):
        try:
            os.chmod(os.path.dirname(p), 0o700)
            func(p)
        except OSError:
            pass
    os.chmod(work, 0o700)
    shutil.rmtree(work, onerror=writable_then_retry)


def grade_file(exercise, path, *, out=None, timeout=DEFAULT_TIMEOUT, hint=1, memory=None):
    """Grade the backward in the file `path` and return the GradeResult.

    The file runs in a child process (see the module docstring): for at most `timeout`
    seconds in all, reading its results included, and with at most `memory` bytes of
    address space for the learner's code (default: a quarter of the machine's memory).
    Never raises for the learner's mistakes; a missing file is a FileNotFoundError.
    hint: 1 (a question), 2 (the term) or 3 (the formula).
    """
    ex = get_exercise(exercise)
    level = check_hint_level(hint)
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"file: no such file {path!r}")
    timeout = check_timeout(timeout)
    chosen, memory = memory is not None, check_memory(memory)
    cases = _cases(ex)
    start = time.monotonic()
    work = tempfile.mkdtemp(prefix="minswin-grade-")
    try:
        child = run_child(ex, os.path.abspath(path), work, timeout, memory)
        printed = child.printed
        if child.flooded:
            return _failure(ex, path, "too much output",
                            f"FAILED: your code printed more than {MAX_OUTPUT >> 20} MB and "
                            "was stopped", "print less (a shape, a norm) while you debug",
                            printed=printed, out=out)
        if child.timed_out:
            return _timed_out(ex, path, timeout, printed, out)
        limit = (f"it ran with a memory limit of {memory / 2 ** 20:,.0f} MB (--memory); "
                 "every exercise needs far less, beside Python and NumPy's own")
        note = f" ({limit})" if chosen else ""           # a limit set low may be the cause
        if child.returncode == OUT_OF_MEMORY:
            return _failure(ex, path, "out of memory",
                            "FAILED: the process running your code ran out of memory", limit,
                            printed=printed, out=out)
        if child.returncode < 0:
            return _failure(ex, path, "crashed",
                            f"FAILED: the process running your code was killed by "
                            f"{signal_name(-child.returncode)}",
                            "a crash in native code (ctypes, a C extension, a signal sent to "
                            f"itself); the lines above, if any, show where{note}",
                            printed=printed, out=out)
        try:
            found = read_results(cases, work) if child.returncode == 0 else None
        except Unreadable as err:
            return _failure(ex, path, "unreadable",
                            "FAILED: the results of your code could not be read",
                            f"{err}; the grader reads only the arrays your function returns",
                            printed=printed, out=out)
        if time.monotonic() - start > timeout:             # reading counts against the limit
            return _timed_out(ex, path, timeout, printed, out)
        if found is None:
            return _failure(ex, path, "exited",
                            f"FAILED: your code ended the process (exit code "
                            f"{child.returncode}) before the grader had its results",
                            "do not call sys.exit, os._exit or quit(): return the gradients"
                            + note,
                            printed=printed, out=out)
    finally:
        try:
            _remove_work(work)
        except OSError:                                    # a leftover in /tmp, no more
            pass
    if isinstance(found, LoadError):
        verdict_line = ("ERROR: could not import your file" if found.status == "error"
                        else "NO FUNCTION to check")
        hint = (found.message if found.status == "error" else
                f"{found.message}. Keep the function name and signature of the skeleton "
                f"(`minswin exercise start {ex.name}` makes a fresh copy)")
        return _failure(ex, path, found.status, verdict_line, hint, printed=printed,
                        tb=found.tb, out=out)
    return _result(ex, *_judge(ex, cases, found, source=path, printed=printed, level=level),
                   out)


def _timed_out(ex, path, timeout, printed, out):
    return _failure(ex, path, "timed out", f"FAILED: timed out after {timeout:g} s",
                    "every exercise grades in about a second; look for a loop that never "
                    "ends (or give more time with --timeout)", printed=printed, out=out)


def check_file(exercise, path):
    """Grade a file and return the exit code (0 only when everything passes): for the
    skeletons' `if __name__ == "__main__"` lines."""
    return grade_file(exercise, path).exit_code
