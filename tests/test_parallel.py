"""minswin.fast.parallel: row blocks on threads change the speed, never the numbers."""
import ast
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import minswin
from minswin.fast import parallel
from minswin.fast.parallel import elementwise, for_row_blocks, set_num_threads


@pytest.fixture
def threads():
    """Restore the thread count, block size and tier after a test changes them."""
    before, block = parallel.num_threads(), parallel.BLOCK_ELEMENTS
    tier = minswin.use_fast(True)                          # these tests are the fast tier's
    yield
    set_num_threads(before)
    parallel.BLOCK_ELEMENTS = block
    minswin.use_fast(tier)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_blocks_cover_the_rows_once_in_order(threads, n):
    set_num_threads(n)
    seen = np.zeros(103, int)

    def kernel(s, e):
        seen[s:e] += 1
        return (s, e)
    spans = for_row_blocks(kernel, 103, 10)
    assert spans == [(s, min(s + 10, 103)) for s in range(0, 103, 10)]
    assert (seen == 1).all()


def test_no_rows_still_runs_the_kernel_once_on_the_empty_range():
    assert for_row_blocks(lambda s, e: (s, e), 0, 8) == [(0, 0)]


def test_an_empty_batch_runs_forward_and_backward(threads):
    set_num_threads(2)
    model = minswin.create_model("swin_micro", num_classes=3, dtype="float64").train()
    logits = model.forward(np.zeros((0, 32, 32, 3)))
    dx = model.backward(np.zeros((0, 3)))
    assert logits.shape == (0, 3) and dx.shape == (0, 32, 32, 3)
    assert all(not g.any() for g in model.grads.values())


def test_a_kernel_error_reaches_the_caller(threads):
    set_num_threads(2)

    def kernel(s, e):
        if s == 30:
            raise ValueError("block 30")
    with pytest.raises(ValueError, match="block 30"):
        for_row_blocks(kernel, 100, 10)


def test_nested_calls_run_serially(threads):
    set_num_threads(2)
    inner = []
    for_row_blocks(lambda s, e: inner.append(for_row_blocks(lambda a, b: b - a, 4, 2)), 4, 1)
    assert inner == [[2, 2]] * 4


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_rejects_bad_counts(threads, bad):
    with pytest.raises(ValueError, match="n: expected a positive int"):
        set_num_threads(bad)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_its_own_threads(threads):
    set_num_threads(2)
    for_row_blocks(lambda s, e: None, 4, 1)                # the parent's pool exists now
    pid = os.fork()
    if pid == 0:                                           # child: would hang on a dead pool
        ok = for_row_blocks(lambda s, e: e - s, 4, 1) == [1, 1, 1, 1]
        os._exit(0 if ok else 1)
    deadline = time.monotonic() + 20
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if done[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung waiting for the parent's threads")
    assert os.waitstatus_to_exitcode(done[1]) == 0


def test_elementwise_matches_the_ufunc_and_falls_back(rng):
    a, b = rng.standard_normal((300, 700)), rng.standard_normal((300, 700))
    np.testing.assert_array_equal(elementwise(np.add, a, b), a + b)
    out = np.empty_like(a)
    assert elementwise(np.multiply, a, b, out=out) is out
    np.testing.assert_array_equal(out, a * b)
    np.testing.assert_array_equal(elementwise(np.add, a, b[0]), a + b[0])      # broadcast
    np.testing.assert_array_equal(elementwise(np.add, a.T, b.T), a.T + b.T)    # strided


def _step(model, x, d):
    model.zero_grad()
    logits = model.forward(x)
    dx = model.backward(d)
    return logits, dx, {k: g.copy() for k, g in model.grads.items()}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_thread_count_and_block_size_do_not_change_the_numbers(threads, rng, dtype):
    """The plain twin of every row-block fast path: the whole network with one thread and
    one block per op (the unblocked maths) against several threads and tiny blocks.

    With one block size, the thread count changes nothing, bit for bit. Between block sizes,
    sums that BLAS makes (LayerNorm's row means) and per-block partial sums (biases, LayerNorm,
    the bias table) may round differently: equal to round-off.
    """
    model = minswin.create_model("swin_micro", num_classes=5, dtype=dtype,
                                 drop_path_rate=0.0).train()
    x = rng.standard_normal((2, 32, 32, 3)).astype(dtype)
    d = rng.standard_normal((2, 5)).astype(dtype)
    set_num_threads(1)
    parallel.BLOCK_ELEMENTS = 10 ** 12                     # one block: the plain maths
    plain = _step(model, x, d)
    parallel.BLOCK_ELEMENTS = 512                          # many blocks
    small = {n: (set_num_threads(n), _step(model, x, d))[1] for n in (1, 3)}
    tol = 1e-5 if dtype == "float32" else 1e-12
    for got, want in zip(small[3], small[1]):              # logits, dx, grads
        if isinstance(got, dict):
            for k in got:
                np.testing.assert_array_equal(got[k], want[k], err_msg=k)
        else:
            np.testing.assert_array_equal(got, want)
    logits, dx, grads = small[3]
    np.testing.assert_allclose(logits, plain[0], rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, plain[1], rtol=tol, atol=tol)
    for k in grads:
        np.testing.assert_allclose(grads[k], plain[2][k], rtol=tol, atol=tol, err_msg=k)


def test_set_num_threads_while_another_thread_runs_never_breaks_it(threads):
    """One thread runs row blocks (the forward of a training step) while another changes the
    thread count (blas_threads, a notebook cell): the running calls finish, the new count
    applies to the next call. Before the fix, set_num_threads shut the pool down under the
    running call: `cannot schedule new futures after shutdown`, or ThreadPoolExecutor(0)."""
    set_num_threads(2)
    errors, stop = [], threading.Event()

    def work():
        try:
            while not stop.is_set():
                assert for_row_blocks(lambda s, e: time.sleep(1e-4) or e - s, 64, 4) == [4] * 16
        except BaseException as err:                       # reported below
            errors.append(err)
            stop.set()
    workers = [threading.Thread(target=work) for _ in range(2)]
    for w in workers:
        w.start()
    deadline = time.monotonic() + 1.0
    counts = (1, 2, 3)
    i = 0
    while time.monotonic() < deadline and not stop.is_set():
        set_num_threads(counts[i % 3])
        i += 1
        time.sleep(1e-3)
    stop.set()
    for w in workers:
        w.join()
    assert not errors, repr(errors[0])
    assert i > 50                                          # the race was really run


def test_the_old_thread_settings_still_work(threads):
    from minswin import parallel as moved  # minswin.parallel moved to fast/
    moved.set_num_threads(3)
    assert parallel.num_threads() == moved.num_threads() == minswin.num_threads() == 3
    minswin.set_num_threads(1)
    assert parallel.num_threads() == 1


def test_import_minswin_sets_no_environment_and_loads_no_training():
    code = ("import os, sys; import minswin; minswin.create_model('swin_micro'); "
            "print(os.environ.get('OPENBLAS_THREAD_TIMEOUT', '-'), "
            "'minswin.training' in sys.modules, 'minswin.data' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["-", "False", "False"], out.stderr


def test_the_command_sets_openblas_timeout_before_numpy_and_never_overrides():
    code = ("import os, sys; import minswin.cli; "
            "print(os.environ['OPENBLAS_THREAD_TIMEOUT'], minswin.cli.BLAS_TIMEOUT_IN_TIME)")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["4", "True"], out.stderr
    env["OPENBLAS_THREAD_TIMEOUT"] = "7"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["7", "True"], out.stderr


def test_tune_cpu_process_reports_what_it_applied():
    code = ("from minswin.runtime import tune_cpu_process; import numpy as np; "
            "r = tune_cpu_process(); a = np.ones(10_000_000, np.float32); del a; print(r)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    report = ast.literal_eval(out.stdout.strip())
    assert set(report) == {"OPENBLAS_THREAD_TIMEOUT", "keep_freed_memory"}
    if sys.platform.startswith("linux"):
        assert report["keep_freed_memory"] is True
