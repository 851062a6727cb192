"""The fast tier (minswin.fast) against its plain twins (minswin.ops), function by function.

Every fast function runs with tiny blocks on two threads (many blocks, a partial last one) and
with one block, in float32 and float64, and must give its plain twin's forward output and
backward gradients to round-off: from its own cache and from the plain twin's cache (the
caches are the same type, so either tier's backward may follow either tier's forward).
"""
import numpy as np
import pytest

import minswin
from minswin import tiers
from minswin.fast import parallel
from minswin.fast.gelu import normal_cdf_fast
from minswin.fast.rows import column_sums, repeat_rows, row_sums
from minswin.gradcheck import TOL_OP, check_op
from minswin.ops.gelu import normal_cdf
from minswin.ops.masks import attention_mask

EPS32 = float(np.finfo(np.float32).eps)
PLAIN, FAST = tiers.PLAIN, tiers.FAST


@pytest.fixture
def blocks():
    """Run a test under given block sizes on two threads, then restore both."""
    before, size = parallel.num_threads(), parallel.BLOCK_ELEMENTS

    def use(elements):
        parallel.BLOCK_ELEMENTS = elements
    parallel.set_num_threads(2)
    yield use
    parallel.set_num_threads(before)
    parallel.BLOCK_ELEMENTS = size


def attention_inputs(r, images, H, W, M, shift, nH=2, C=8):
    Hp, Wp = H + (-H) % M, W + (-W) % M
    nW, N = (Hp // M) * (Wp // M), M * M
    mask = attention_mask(Hp, Wp, M, shift) if shift else None
    return (dict(x=r(images * nW, N, C), qkv_weight=r(3 * C, C), qkv_bias=r(3 * C),
                 proj_weight=r(C, C), proj_bias=r(C), bias=r(nH, N, N)),
            dict(mask=mask, num_heads=nH))


def cosine_inputs(r, images, H, W, M, shift, nH=2, C=8):
    """Swin V2's cosine attention: attention_inputs with q_bias/v_bias and logit_scale (head 1
    above the clamp of log 100, where its gradient is 0)."""
    inputs, static = attention_inputs(r, images, H, W, M, shift, nH, C)
    qkv_bias = inputs.pop("qkv_bias")
    dtype = qkv_bias.dtype
    logit_scale = np.array([1.5, 5.0][:nH], dtype).reshape(nH, 1, 1)
    inputs = dict(x=inputs.pop("x"), qkv_weight=inputs.pop("qkv_weight"), q_bias=qkv_bias[:C],
                  v_bias=qkv_bias[2 * C:], logit_scale=logit_scale, **inputs)
    return inputs, static


# name -> (the op's name in a tier, r -> (differentiable inputs, static arguments))
TWINS = {
    "add": ("add", lambda r: (dict(x=r(6, 5, 7), y=r(6, 5, 7)), {})),
    "linear": ("linear", lambda r: (dict(x=r(3, 7, 5), w=r(6, 5), b=r(6)), {})),
    "linear_no_bias": ("linear", lambda r: (dict(x=r(21, 5), w=r(6, 5)), {})),
    "layernorm": ("layernorm", lambda r: (dict(x=r(3, 7, 8) * 3 + 1, gamma=r(8), beta=r(8)),
                                          {})),
    "gelu": ("gelu", lambda r: (dict(x=r(5, 9, 7) * 3), {})),
    "softmax": ("softmax", lambda r: (dict(s=r(4, 3, 6) * 3), {})),
    "mlp": ("mlp", lambda r: (dict(x=r(5, 7, 4), fc1_weight=r(16, 4), fc1_bias=r(16),
                                   fc2_weight=r(4, 16), fc2_bias=r(4)), {})),
    "patch_merging": ("patch_merging", lambda r: (dict(x=r(3, 5, 6, 3), norm_weight=r(12),
                                                       norm_bias=r(12),
                                                       reduction_weight=r(6, 12)), {})),
    # 5 images of 4 windows (4x4 map, M=2): blocks of whole images, of windows inside one
    # image, and a partial last block, depending on BLOCK_ELEMENTS below
    "attention_w_msa": ("window_attention", lambda r: attention_inputs(r, 5, 4, 4, 2, 0)),
    "attention_sw_msa": ("window_attention", lambda r: attention_inputs(r, 5, 4, 4, 2, 1)),
    "attention_sw_msa_padded": ("window_attention",
                                lambda r: attention_inputs(r, 3, 5, 7, 3, 1, nH=1, C=4)),
    "cosine_w_msa": ("cosine_attention", lambda r: cosine_inputs(r, 5, 4, 4, 2, 0)),
    "cosine_sw_msa": ("cosine_attention", lambda r: cosine_inputs(r, 5, 4, 4, 2, 1)),
    "cosine_sw_msa_padded": ("cosine_attention",
                             lambda r: cosine_inputs(r, 3, 5, 7, 3, 1, nH=1, C=4)),
}

# BLOCK_ELEMENTS: 8 -> a row or a window per block; 64 -> two windows of one image (the
# slice of bias_and_mask); 256 -> two whole images per block (its broadcast) and a partial
# last block of one image; 10**9 -> one block, the unblocked path
BLOCK_SIZES = [8, 64, 256, 10 ** 9]


def _ops(tier, op):
    if op == "add":
        return tier.add, None
    return getattr(tier, f"{op}_forward"), getattr(tier, f"{op}_backward")


def _grads(result):
    return result if isinstance(result, tuple) else (result,)


def _assert_close(got, want, dtype, what):
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for i, (g, w) in enumerate(zip(got, want)):
        if w is None:
            assert g is None, f"{what}[{i}]"
            continue
        assert g.shape == w.shape and g.dtype == w.dtype, f"{what}[{i}]"
        scale = max(1.0, float(np.abs(w).max()))
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol * scale, err_msg=f"{what}[{i}]")


@pytest.mark.parametrize("block", BLOCK_SIZES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(TWINS))
def test_fast_twin_equals_plain_forward_and_backward(name, dtype, block, blocks):
    blocks(block)
    op, make = TWINS[name]
    g = np.random.default_rng(7)
    inputs, static = make(lambda *shape: g.standard_normal(shape).astype(dtype))
    static = {k: v.astype(dtype) if isinstance(v, np.ndarray) else v for k, v in static.items()}
    (plain_fwd, plain_bwd), (fast_fwd, fast_bwd) = _ops(PLAIN, op), _ops(FAST, op)
    if op == "add":
        _assert_close([fast_fwd(**inputs)], [plain_fwd(**inputs)], dtype, "add")
        return
    want, plain_cache = plain_fwd(**inputs, **static)
    got, fast_cache = fast_fwd(**inputs, **static)
    _assert_close([got], [want], dtype, f"{name} forward")
    assert type(fast_cache) is type(plain_cache)           # the same cache type
    dout = g.standard_normal(want.shape).astype(dtype)
    want_grads = _grads(plain_bwd(dout, plain_cache))
    _assert_close(_grads(fast_bwd(dout, fast_cache)), want_grads, dtype, f"{name} backward")
    _assert_close(_grads(fast_bwd(dout, plain_cache)), want_grads, dtype,
                  f"{name} fast backward on the plain cache")
    _assert_close(_grads(plain_bwd(dout, fast_cache)), want_grads, dtype,
                  f"{name} plain backward on the fast cache")


@pytest.mark.parametrize("name", ["layernorm", "linear", "linear_no_bias", "mlp", "gelu",
                                  "softmax", "patch_merging", "attention_w_msa",
                                  "attention_sw_msa", "attention_sw_msa_padded",
                                  "cosine_w_msa", "cosine_sw_msa", "cosine_sw_msa_padded"])
def test_fast_backward_on_many_row_blocks_matches_central_differences(name, blocks):
    """The fast kernels' own float64 gradient check, with their rows cut into tiny blocks on
    two threads (a kernel that read the wrong rows of a later block would pass a one-block
    check)."""
    blocks(8)
    op, make = TWINS[name]
    g = np.random.default_rng(1)
    inputs, static = make(lambda *shape: g.standard_normal(shape))
    forward, backward = _ops(FAST, op)
    if name == "linear_no_bias":
        forward, backward = _ops(FAST, op)[0], lambda d, c: FAST.linear_backward(d, c)[:2]
    report = check_op(forward, backward, inputs, static=static, title=name)
    assert report.passed, str(report)
    assert report.max_rel_error < TOL_OP


# ---------------------------------------------------------------------------- the switch

def test_use_fast_switches_every_layer_and_returns_the_previous_setting(monkeypatch, rng):
    monkeypatch.delenv(tiers.ENV, raising=False)
    calls = []
    spy = {f: (lambda f: lambda *a, **k: calls.append(f) or getattr(PLAIN, f)(*a, **k))(f)
           for f in tiers.FUNCTIONS}
    monkeypatch.setattr(tiers, "PLAIN", type(PLAIN)(name="plain", **spy))
    model = minswin.create_model("swin_micro", num_classes=3).train()
    x = rng.standard_normal((1, 32, 32, 3)).astype(np.float32)
    previous = minswin.use_fast(False)
    try:
        assert previous is None                            # the default: by backend
        model.forward(x)
        model.backward(np.ones((1, 3), np.float32))
        assert {"add", "linear_forward", "layernorm_backward", "mlp_backward",
                "window_attention_forward", "window_attention_backward",
                "patch_embed_forward", "patch_merging_backward"} <= set(calls)
        calls.clear()
        assert minswin.use_fast(True) is False
        model.forward(x)
        assert calls == []                                 # none of the plain tier
    finally:
        minswin.use_fast(previous)


def test_the_default_and_the_environment(monkeypatch):
    previous = minswin.use_fast(None)
    try:
        monkeypatch.delenv(tiers.ENV, raising=False)
        assert tiers.fast_enabled(np) is True              # NumPy: fast
        assert tiers.fast_enabled(object()) is False       # any other backend: plain
        monkeypatch.setenv(tiers.ENV, "0")
        assert tiers.fast_enabled(np) is False
        monkeypatch.setenv(tiers.ENV, "1")
        assert tiers.fast_enabled(object()) is True
        minswin.use_fast(False)                            # the call wins over the shell
        assert tiers.fast_enabled(np) is False
        minswin.use_fast(None)
        monkeypatch.setenv(tiers.ENV, "yes")
        with pytest.raises(ValueError, match="MINSWIN_FAST: expected 0 .* or 1 .*, got 'yes'"):
            tiers.fast_enabled(np)
        with pytest.raises(TypeError, match="enabled: expected True, False or None, got 'on'"):
            minswin.use_fast("on")
    finally:
        minswin.use_fast(previous)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_whole_model_step_is_the_same_on_both_tiers(rng, dtype):
    model = minswin.create_model("swin_micro", num_classes=5, dtype=dtype,
                                 drop_path_rate=0.0).train()
    x = rng.standard_normal((2, 32, 32, 3)).astype(dtype)
    d = rng.standard_normal((2, 5)).astype(dtype)
    out = {}
    previous = minswin.use_fast(True)
    try:
        for fast in (True, False):
            minswin.use_fast(fast)
            model.zero_grad()
            logits = model.forward(x)
            dx = model.backward(d)
            out[fast] = (logits, dx, {k: g.copy() for k, g in model.grads.items()})
    finally:
        minswin.use_fast(previous)
    tol = 1e-4 if dtype == "float32" else 1e-11
    for a, b in zip(out[True][:2], out[False][:2]):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    for k, g in out[True][2].items():
        np.testing.assert_allclose(g, out[False][2][k], rtol=tol, atol=tol, err_msg=k)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
def test_both_tiers_run_on_every_backend(xp, fast, rng):
    """Forced onto either tier, a float64 training step on xp (CuPy: a GPU or the stand-in,
    where the default is the plain tier) gives NumPy's numbers: the fast kernels run there as
    one block of every row."""
    from minswin.backend import to_numpy
    x = rng.standard_normal((2, 32, 32, 3))
    d = rng.standard_normal((2, 5))
    out = {}
    previous = minswin.use_fast(fast)
    try:
        for name in ("numpy", xp.__name__):
            minswin.use(name)
            model = minswin.create_model("swin_micro", num_classes=5, dtype="float64",
                                         drop_path_rate=0.0).train()
            xb = minswin.to_backend(x, model.xp)
            logits = model.forward(xb)
            dx = model.backward(minswin.to_backend(d, model.xp))
            out[name] = [to_numpy(logits), to_numpy(dx)] + [to_numpy(model.grads[k])
                                                            for k in sorted(model.grads)]
    finally:
        minswin.use("numpy")
        minswin.use_fast(previous)
    for a, b in zip(out[xp.__name__], out["numpy"]):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11)


# ---------------------------------------------------------------------------- softmax extremes

EXTREME_ROWS = [
    (np.float32, [100.0, 0.0]),          # exp(100) overflows float32 without the max shift
    (np.float32, [-120.0, -130.0]),      # exp(-120) underflows float32 to 0: 0 / 0
    (np.float64, [800.0, 0.0]),          # exp(800) overflows float64
]


@pytest.mark.parametrize("tier", [PLAIN, FAST], ids=["plain", "fast"])
@pytest.mark.parametrize("dtype, row", EXTREME_ROWS)
def test_softmax_of_large_and_very_negative_scores(tier, dtype, row):
    """Softmax must subtract the row max: without it these rows give inf / inf or 0 / 0."""
    s = np.array([row, row[::-1]], dtype)
    p, cache = tier.softmax_forward(s)
    gap = abs(row[0] - row[1])
    big = 1.0 / (1.0 + np.exp(-gap))                       # exact, in float64
    want = np.array([[big, 1 - big], [1 - big, big]]) if row[0] > row[1] else \
        np.array([[1 - big, big], [big, 1 - big]])
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p, want, rtol=1e-6, atol=1e-30)
    ds = tier.softmax_backward(np.ones_like(s), cache)     # sum(p) is constant: ds = 0
    np.testing.assert_allclose(ds, 0, atol=1e-6)


@pytest.mark.parametrize("tier", [PLAIN, FAST], ids=["plain", "fast"])
def test_attention_with_huge_scores_stays_finite(tier, rng):
    """The same through window attention (the fast tier's softmax runs in place over its
    blocks of scores): a bias of +-100 on top of the scores."""
    inputs, static = attention_inputs(lambda *s: rng.standard_normal(s).astype(np.float32),
                                      2, 4, 4, 2, 1)
    inputs["bias"] = np.where(rng.random(inputs["bias"].shape) < 0.5, 100.0,
                              -130.0).astype(np.float32)
    static["mask"] = static["mask"].astype(np.float32)
    out, cache = tier.window_attention_forward(**inputs, **static)
    assert np.isfinite(out).all() and np.isfinite(cache.attn.out).all()
    np.testing.assert_allclose(cache.attn.out.sum(-1), 1, rtol=1e-5)


# ---------------------------------------------------------------------------- the fast erf

def test_fast_normal_cdf_is_float32_round_off_over_the_real_line():
    x = np.linspace(-14, 14, 4_000_001).astype(np.float32)  # many blocks, both tails
    fast = normal_cdf_fast(x).astype(np.float64)
    exact = normal_cdf(x.astype(np.float64))
    assert np.abs(fast - exact).max() < 3 * EPS32            # measured: 2.59
    # GELU = x Phi(x): within 3 float32 ulps of |x| everywhere. Measured: 2.59, at x ~ 0.04
    # where 1/2 - u cancels; PyTorch's own float32 CPU GELU: 2.30; scipy's float32 erf: 0.51
    err = np.abs(x * fast - x * exact) / np.maximum(np.abs(x), 1e-30)
    assert err.max() < 3 * EPS32
    assert normal_cdf_fast(np.zeros(3, np.float32)).tolist() == [0.5, 0.5, 0.5]


def test_fast_normal_cdf_keeps_shape_and_dtype(rng):
    x = rng.standard_normal((3, 5, 7)).astype(np.float32)
    y = normal_cdf_fast(x)
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, normal_cdf(x.astype(np.float64)), atol=4 * EPS32)


@pytest.mark.parametrize("tier", [PLAIN, FAST], ids=["plain", "fast"])
def test_float32_gelu_forward_backward_match_float64(tier, rng):
    x = (rng.standard_normal((64, 33)) * 3).astype(np.float32)
    d = rng.standard_normal((64, 33)).astype(np.float32)
    y32, c32 = tier.gelu_forward(x)
    y64, c64 = PLAIN.gelu_forward(x.astype(np.float64))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=0, atol=8 * EPS32)
    np.testing.assert_allclose(tier.gelu_backward(d, c32),
                               PLAIN.gelu_backward(d.astype(np.float64), c64),
                               rtol=0, atol=32 * EPS32)


@pytest.mark.parametrize("tier", [PLAIN, FAST], ids=["plain", "fast"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gelu_on_non_contiguous_input(tier, rng, dtype):
    x = rng.standard_normal((64, 33)).astype(dtype).T          # a transposed view
    d = rng.standard_normal((64, 33)).astype(dtype).T
    y, c = tier.gelu_forward(x)
    y2, c2 = tier.gelu_forward(np.ascontiguousarray(x))
    np.testing.assert_array_equal(y, y2)
    np.testing.assert_array_equal(tier.gelu_backward(d, c),
                                  tier.gelu_backward(np.ascontiguousarray(d), c2))


@pytest.mark.parametrize("shape", [(7,), (5, 49), (2, 3, 4, 96)])
def test_row_helpers_equal_their_one_line_definitions(rng, shape):
    """fast/rows.py: row_sums is x.sum(-1, keepdims=True) and column_sums x.sum(0), through
    BLAS; repeat_rows is a broadcast made concrete."""
    x = rng.standard_normal(shape)
    x2 = x.reshape(-1, shape[-1])
    np.testing.assert_allclose(column_sums(x2), x2.sum(axis=0), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(row_sums(x), x.sum(axis=-1, keepdims=True), rtol=1e-13,
                               atol=1e-13)
    assert row_sums(x).shape == x.sum(axis=-1, keepdims=True).shape
    v = rng.standard_normal(shape[-1])
    r = repeat_rows(v, 3)
    assert r.flags.c_contiguous and r.flags.writeable
    np.testing.assert_array_equal(r, np.broadcast_to(v, (3, shape[-1])))


def test_every_fast_function_names_its_plain_twin():
    for f in tiers.NO_FAST_TWIN:
        assert getattr(FAST, f) is getattr(PLAIN, f), f    # the plain op serves both tiers
    for f in set(tiers.FUNCTIONS) - set(tiers.NO_FAST_TWIN):
        fast, plain = getattr(FAST, f), getattr(PLAIN, f)
        assert fast is not plain, f
        assert fast.__name__ == plain.__name__ == f
        assert fast.__doc__.startswith(f"Fast twin of `ops.{plain.__module__.split('.')[-1]}"
                                       f".{f}`"), f
