"""minswin's CuPy paths beyond the ops: the CLI, training, DropPath, the loss, the caches and
tutorial 9, run on CuPy.

Marked `gpu`: they run on a real GPU, or on the strict CPU stand-in with
`MINSWIN_CUPY_STANDIN=1 pytest -m gpu`, and are skipped with the reason otherwise. The tests
that count host<->device transfers need the stand-in's counters; on a real GPU they are
skipped with that reason (real CuPy has no such counter), except the "on the device" tests,
which count on the stand-in and check on a GPU that everything returned is a device array.
"""
import contextlib
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import NEEDS_GPU, STANDIN

import minswin
from minswin.backend import to_backend, to_numpy

pytestmark = NEEDS_GPU
COUNTS = pytest.mark.skipif(not STANDIN, reason="counting host<->device transfers needs the "
                                                "CuPy stand-in (MINSWIN_CUPY_STANDIN=1)")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def cp():
    """CuPy (or its stand-in) as the default backend for the test, NumPy again afterwards."""
    import cupy
    minswin.use("cupy")
    yield cupy
    minswin.use("numpy")


def transfers():
    import cupy_standin
    return cupy_standin.count_transfers()


# ---------------------------------------------------------------------------- the CLI

@pytest.mark.parametrize("figure", ["attention", "attention-weights", "hierarchy", "bias"])
def test_plot_model_figures_with_a_model_on_cupy(figure, cp, tmp_path, capsys):
    """`minswin plot` with MINSWIN_BACKEND=cupy: the input goes where the weights are."""
    from minswin.cli import main
    path = tmp_path / f"{figure}.png"
    rc = main(["plot", figure, "--model", "swin_micro", "-o", str(path)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert path.stat().st_size > 10_000, out


# ---------------------------------------------------------------------------- training

def _step(cp, drop_path_rate=0.2):
    from minswin.loss import check_labels
    from minswin.optim import create_optimizer
    from minswin.training import train_step
    model = minswin.create_model("swin_micro", num_classes=5, seed=0,
                                 drop_path_rate=drop_path_rate).train()
    opt = create_optimizer("adamw", model.params, lr=1e-3)
    g = np.random.default_rng(0)
    x_host = g.standard_normal((4, 32, 32, 3)).astype(np.float32)
    y_host = g.integers(0, 5, 4)
    check_labels(y_host, 5)                        # as the training loop does, on the host
    x, y = to_backend(x_host, cp), to_backend(y_host, cp)
    train_step(model, opt, x, y, lr=1e-3, label_smoothing=0.1, clip_grad=1.0)   # warm caches
    return model, opt, x, y


@COUNTS
def test_a_training_step_syncs_once_and_copies_nothing_to_the_device(cp):
    """One device->host transfer per step (the loss and the count, together), and no small
    host->device copies (DropPath masks are drawn on the device, the loss's 1.0 stays a
    Python number)."""
    from minswin.training import train_step
    model, opt, x, y = _step(cp)
    with transfers() as n:
        loss, correct = train_step(model, opt, x, y, lr=1e-3, label_smoothing=0.1,
                                   clip_grad=1.0)
    assert isinstance(loss, float) and isinstance(correct, int) and 0 <= correct <= 4
    assert n["d2h"] == 1, n
    assert n["h2d"] == 0, n


@COUNTS
def test_a_non_finite_loss_still_leaves_the_weights_alone(cp):
    from minswin.training import train_step
    model, opt, x, y = _step(cp, drop_path_rate=0.0)
    before = {k: to_numpy(v).copy() for k, v in model.params.items()}
    bad = x.copy()
    bad[0, 0, 0, 0] = float("nan")
    with transfers() as n:
        loss, correct = train_step(model, opt, bad, y, lr=1e-3, label_smoothing=0.0,
                                   clip_grad=0.0)
    assert correct is None and not np.isfinite(loss) and n["d2h"] == 1
    for k, v in model.params.items():
        np.testing.assert_array_equal(to_numpy(v), before[k], err_msg=k)


@COUNTS
def test_droppath_draws_its_mask_on_the_device_and_replays_from_the_host_state(cp):
    from minswin.ops.droppath import droppath_forward
    x = to_backend(np.ones((64, 3, 2), np.float32), cp)
    g = np.random.default_rng(5)
    state = g.bit_generator.state
    with transfers() as n:
        out, cache = droppath_forward(x, 0.5, True, g)
    assert n["h2d"] == 0 and n["d2h"] == 0, n
    kept = to_numpy(out)[:, 0, 0]
    assert set(np.unique(kept)) <= {0.0, 2.0} and 10 < (kept == 0).sum() < 54
    assert np.all(to_numpy(out) == kept[:, None, None])   # one decision per sample
    g.bit_generator.state = state                  # what a resumed run restores
    again, _ = droppath_forward(x, 0.5, True, g)
    np.testing.assert_array_equal(to_numpy(again), to_numpy(out))


@COUNTS
def test_loss_backward_of_a_python_number_copies_nothing(cp):
    from minswin.loss import cross_entropy_backward, cross_entropy_forward
    logits = to_backend(np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32), cp)
    y = to_backend(np.array([0, 3, 1]), cp)
    with transfers() as n:
        loss, cache = cross_entropy_forward(logits, y, 0.1, check_values=False)
        d = cross_entropy_backward(1.0, cache)
    assert n == {"h2d": 0, "d2h": 0, "sync": 0}
    assert d.dtype == np.float32


# ---------------------------------------------------------------------------- caches

@COUNTS
def test_caches_are_per_device(cp):
    """A mask made for GPU 0 is never handed to an op on GPU 1 (the stand-in has two)."""
    from minswin.ops.masks import cached_attention_mask, cached_relative_position_index
    a0 = cached_attention_mask(8, 8, 4, 2, cp, np.float32)
    i0 = cached_relative_position_index(4, cp)
    with cp.cuda.Device(1):
        a1 = cached_attention_mask(8, 8, 4, 2, cp, np.float32)
        i1 = cached_relative_position_index(4, cp)
        assert a1 is cached_attention_mask(8, 8, 4, 2, cp, np.float32)
    assert a1 is not a0 and i1 is not i0
    assert a0.device.id == 0 and a1.device.id == 1 and i1.device.id == 1
    np.testing.assert_array_equal(to_numpy(a1), to_numpy(a0))
    assert a0 is cached_attention_mask(8, 8, 4, 2, cp, np.float32)


@COUNTS
def test_no_forward_or_backward_writes_into_a_cached_constant(cp):
    """CuPy arrays have no read-only flag; the stand-in's can be frozen, so any write into a
    cached mask or index during training raises at the line that makes it."""
    import cupy_standin

    from minswin.ops import masks
    masks._device_cache.clear()
    model, opt, x, y = _step(cp)                   # fills the caches on the device
    cached = [a for a in masks._device_cache._items.values() if isinstance(a, cp.ndarray)]
    assert len(cached) >= 2                        # the index and at least one shift mask
    snapshot = [to_numpy(a) for a in cached]
    for a in cached:
        cupy_standin.freeze(a)
    from minswin.training import train_step
    train_step(model, opt, x, y, lr=1e-3, label_smoothing=0.1, clip_grad=1.0)
    model.eval().forward(x)
    for a, s in zip(cached, snapshot):
        np.testing.assert_array_equal(to_numpy(a), s)


# ---------------------------------------------------------------------------- tutorial 9

def test_tutorial_9_runs_with_the_cupy_backend_already_chosen(tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg", MINSWIN_SMALL="1", MINSWIN_BACKEND="cupy",
               PYTHONPATH=os.pathsep.join([p for p in (os.environ.get("PYTHONPATH"), ROOT)
                                           if p]))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tutorials",
                                                        "09_numpy_and_cupy.py")],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "CuPy with a GPU available: True" in proc.stdout
    assert "tutorial 9: all checks passed" in proc.stdout


# ---------------------------------------------------------------------------- the ops on CuPy

def calls():
    import cupy_standin
    return cupy_standin.count_calls()


@pytest.fixture
def tier_default():
    """No use_fast setting and no MINSWIN_FAST: the default tier of each backend."""
    previous = minswin.use_fast(None)
    old_env = os.environ.pop("MINSWIN_FAST", None)
    yield
    minswin.use_fast(previous)
    if old_env is not None:
        os.environ["MINSWIN_FAST"] = old_env


def test_cupy_runs_the_plain_tier_by_default(cp, tier_default):
    from minswin import tiers
    x = cp.ones((2, 3), dtype=cp.float32)
    assert tiers.tier(x) is tiers.PLAIN and tiers.tier(np.ones(2)) is tiers.FAST


@COUNTS
def test_biased_linear_on_cupy_makes_no_extra_copy(cp, tier_default):
    """The fast tier's `xp.add(out[s:e], b, out=out[s:e])` hands CuPy two view objects of the
    same rows, so CuPy copies the input first: a whole (T, Cout) copy. The plain tier,
    CuPy's default, writes `x @ w.T + b`, and its backward sums rows with `.sum`."""
    from minswin import tiers
    g = np.random.default_rng(0)
    x, w, b = (to_backend(g.standard_normal(s).astype(np.float32), cp)
               for s in ((2, 5, 8), (6, 8), (6,)))
    with calls() as c:
        out, cache = tiers.PLAIN.linear_forward(x, w, b)
        dx, dw, db = tiers.PLAIN.linear_backward(cp.ones_like(out), cache)
    assert c["copy for overlap"] == 0, c
    assert c["matmul"] == 3 and c["ndarray.sum"] == 1, c      # forward, dx, dw; db by .sum
    with calls() as c:                                          # what the counter would see
        fast_out, _ = tiers.FAST.linear_forward(x, w, b)
    assert c["copy for overlap"] >= 1, c
    np.testing.assert_allclose(to_numpy(fast_out), to_numpy(out), rtol=1e-6, atol=1e-6)


@COUNTS
def test_float32_gelu_on_cupy_is_one_exact_erf(cp, tier_default):
    """CuPy's default GELU calls cupyx.scipy.special.erf once (one kernel, exact); the fast
    tier's Abramowitz-Stegun erf would be a dozen or more elementwise kernels."""
    from scipy.special import erf

    from minswin import tiers
    x_host = np.linspace(-4, 4, 101, dtype=np.float32)
    x = to_backend(x_host, cp)
    with calls() as c:
        out, _ = tiers.tier(x).gelu_forward(x)
    assert c["erf"] == 1 and c["copysign"] == 0, c
    expect = x_host * 0.5 * (1 + erf(x_host.astype(np.float64) / np.sqrt(2)))
    np.testing.assert_allclose(to_numpy(out), expect, rtol=1e-6, atol=1e-7)
    with calls() as c:
        tiers.FAST.gelu_forward(x)
    assert c["erf"] == 0 and sum(c.values()) > 10, c          # A&S: many small kernels


@COUNTS
@pytest.mark.parametrize("name", ["swin_micro", "swinv2_digits"])
def test_a_model_step_on_cupy_has_no_overlap_copies_and_one_erf_per_gelu(cp, tier_default,
                                                                          name):
    """Forward and backward in training mode (DropPath on): no transfer either way, no
    overlap copy, one exact erf per MLP."""
    model = minswin.create_model(name, num_classes=5, seed=0, drop_path_rate=0.1).train()
    S = model.config.img_size
    x = to_backend(np.random.default_rng(0).standard_normal((2, S, S, 3))
                   .astype(np.float32), cp)
    model.backward(cp.ones_like(model.forward(x)))    # caches filled
    with calls() as c, transfers() as n:
        logits = model.forward(x)
        model.backward(cp.ones_like(logits))
    assert n == {"h2d": 0, "d2h": 0, "sync": 0}, n
    assert c["copy for overlap"] == 0, c
    assert c["erf"] == sum(model.config.depths) and c["copysign"] == 0, c


def test_the_fast_tier_still_runs_on_cupy_when_asked(cp, tier_default):
    """float64 so the two tiers agree to round-off (the fast tier's float32 erf is A&S)."""
    g = np.random.default_rng(1)
    x = to_backend(g.standard_normal((2, 36, 28, 3)), cp)
    d = to_backend(g.standard_normal((2, 5)), cp)
    out = {}
    for fast in (False, True):
        minswin.use_fast(fast)
        model = minswin.create_model("swin_micro", num_classes=5, seed=0, dtype="float64")
        out[fast] = (model.forward(x), model.backward(d), dict(model.grads))
    from minswin.gradcheck import rel_error
    (y0, dx0, g0), (y1, dx1, g1) = out[False], out[True]
    assert rel_error(y1, y0) < 1e-12 and rel_error(dx1, dx0) < 1e-12
    assert max(rel_error(g1[k], g0[k]) for k in g0) < 1e-11


# ---------------------------------------------------------------------------- on the device
# These run on a real GPU too: there they check that everything returned is on the device;
# on the stand-in they also count the transfers (real CuPy has no such counter).

NO_TRANSFERS = {"h2d": 0, "d2h": 0, "sync": 0}


@contextlib.contextmanager
def counted():
    """The stand-in's transfer counts for a block; None on a real GPU (nothing counted)."""
    if not STANDIN:
        yield None
        return
    with transfers() as n:
        yield n

def off_device(result, where="result", seen=None):
    """Every host (NumPy) array inside what an op, a model or a step returned: outputs,
    gradients, and the arrays its caches keep (a host array there means a copy each way)."""
    seen = set() if seen is None else seen
    if id(result) in seen or result is None or isinstance(result, (str, bytes, int, float)):
        return []
    seen.add(id(result))
    if isinstance(result, np.ndarray):
        return [f"{where}: a NumPy array {result.shape}"]
    if type(result).__module__.split(".")[0] == "cupy":
        return []
    if isinstance(result, dict):
        items = result.items()
    elif isinstance(result, (tuple, list)):
        items = enumerate(result)
    elif hasattr(result, "__dict__") or hasattr(type(result), "__slots__"):
        names = list(getattr(result, "__dict__", {})) + list(getattr(type(result), "__slots__",
                                                                     ()))
        items = [(n, getattr(result, n, None)) for n in names]
    else:
        return []
    return [p for k, v in items for p in off_device(v, f"{where}.{k}", seen)]


def _twin_cases():
    from test_twins import TWINS
    return sorted(TWINS)


@pytest.mark.parametrize("tier_name", ["plain", "fast"])
@pytest.mark.parametrize("case", _twin_cases())
def test_every_tier_op_on_cupy_stays_on_the_device(cp, case, tier_name):
    """Each op of both tiers, forward and backward on CuPy (the fast tier too, which CuPy
    runs when asked): no transfer either way, and everything it returns is a device array.
    A host round trip anywhere inside an op fails here."""
    from test_twins import TWINS, _grads, _ops

    from minswin import tiers
    op, make = TWINS[case]
    g = np.random.default_rng(0)
    inputs, static = make(lambda *s: g.standard_normal(s))
    inputs = {k: to_backend(v, cp) for k, v in inputs.items()}
    static = {k: to_backend(v, cp) if isinstance(v, np.ndarray) else v
              for k, v in static.items()}
    forward, backward = _ops(getattr(tiers, tier_name.upper()), op)
    for _ in range(2):                             # the first call fills the caches
        with counted() as n:
            if backward is None:
                out, grads = forward(**inputs), ()
            else:
                out, cache = forward(**inputs, **static)
                grads = _grads(backward(cp.ones_like(out), cache))
    assert n in (None, NO_TRANSFERS), (case, n)
    assert isinstance(out, cp.ndarray)
    assert off_device((out, grads) if backward is None else (out, cache, grads)) == []


@pytest.mark.parametrize("case", ["relative_bias", "droppath_train", "to_windows_shift_pad",
                                  "patch_embed_padded", "v2 cpb_M3_pretrained_2",
                                  "v2 qkv_bias", "v2 normalize", "v2 patch_merging_v2_odd"])
def test_the_ops_outside_the_tiers_stay_on_the_device(cp, case):
    """The plain-only ops (and Swin V2's): the same, from the gradient checks' cases."""
    if case.startswith("v2 "):
        from test_v2_ops import CASES
        name = case[3:]
    else:
        from test_ops_gradcheck import CASES
        name = case
    forward, backward, inputs, static = CASES[name](np.random.default_rng(1))
    inputs = {k: to_backend(v, cp) for k, v in inputs.items()}
    static = {k: to_backend(v, cp) if isinstance(v, np.ndarray) else v
              for k, v in static.items()}
    for _ in range(2):
        with counted() as n:
            out, cache = forward(**inputs, **static)
            grads = backward(cp.ones_like(out), cache)
    assert n in (None, NO_TRANSFERS), (name, n)
    assert isinstance(out, cp.ndarray) and off_device((out, cache, grads)) == [], name


@pytest.mark.parametrize("name", ["swin_micro", "swinv2_digits"])
@pytest.mark.parametrize("fast", [False, True])
def test_a_model_on_cupy_returns_device_arrays_and_copies_nothing(cp, name, fast):
    """Forward, backward and an optimiser step of a whole model, on either tier: no
    transfer, and logits, dx, every parameter, gradient and optimiser buffer on the device."""
    from minswin.optim import create_optimizer
    previous = minswin.use_fast(fast)
    try:
        model = minswin.create_model(name, num_classes=5, seed=0, drop_path_rate=0.1).train()
        opt = create_optimizer("adamw", model.params, lr=1e-3)
        S = model.config.img_size
        x = to_backend(np.random.default_rng(0).standard_normal((2, S, S, 3))
                       .astype(np.float32), cp)
        for _ in range(2):
            with counted() as n:
                model.zero_grad()
                logits = model.forward(x)
                dx = model.backward(cp.ones_like(logits))
                opt.step(model.grads)
        assert n in (None, NO_TRANSFERS), n
        assert isinstance(logits, cp.ndarray) and isinstance(dx, cp.ndarray)
        assert off_device((model.params, model.grads, opt)) == []
        with counted() as n:
            y = model.eval().forward(x)
        assert n in (None, NO_TRANSFERS) and isinstance(y, cp.ndarray), n
    finally:
        minswin.use_fast(previous)


@pytest.mark.parametrize("fast", [False, True])
def test_a_training_step_on_either_tier_leaves_everything_on_the_device(cp, fast):
    from minswin.training import train_step
    previous = minswin.use_fast(fast)
    try:
        model, opt, x, y = _step(cp)
        with counted() as n:
            loss, correct = train_step(model, opt, x, y, lr=1e-3, label_smoothing=0.1,
                                       clip_grad=1.0)
        assert n is None or (n["d2h"] == 1 and n["h2d"] == 0), n   # loss and count together
        assert isinstance(loss, float) and isinstance(correct, int)
        assert off_device((model.params, model.grads, opt)) == []
    finally:
        minswin.use_fast(previous)


def test_writing_weights_into_a_model_on_cupy_as_the_params_error_says(cp):
    """The advice of the error for `params[k] = v`: write into the array, with v on the
    array's backend. A NumPy v is refused there, as CuPy refuses it."""
    model = minswin.create_model("swin_micro", num_classes=5, seed=0)
    k = "head.weight"
    with pytest.raises(TypeError, match=r"to_backend\(value, 'cupy'\)") as err:
        model.params[k] = np.ones(model.params[k].shape, np.float32)
    assert "[...] = value" in str(err.value)
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray cannot be used for fill"):
        model.params[k][...] = np.ones(model.params[k].shape, np.float32)
    model.params[k][...] = minswin.to_backend(np.ones(model.params[k].shape, np.float32),
                                              "cupy")
    assert float(model.params[k].sum()) == model.params[k].size
