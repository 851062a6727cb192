"""The whole network: shapes, official numbers, any input size, and its backward."""
import numpy as np
import pytest

import minswin
from minswin.gradcheck import TOL_BLOCK, TOL_MODEL, check_module
from minswin.model import SwinTransformerBlock


def tiny(dtype="float64", **kw):
    cfg = dict(embed_dim=12, num_classes=5, drop_path_rate=0.1)
    cfg.update(kw)
    return minswin.create_model("swin_micro", dtype=dtype, seed=1, **cfg)


def randomise(model, rng, scale=0.5):
    """Make every term matter: LN affines, biases and bias tables far from their init."""
    for k, p in model.params.items():
        if k.endswith(("norm1.weight", "norm2.weight", "norm.weight")):
            p[...] = 1 + scale * rng.standard_normal(p.shape)
        elif k.endswith((".bias", "relative_position_bias_table")):
            p[...] = scale * rng.standard_normal(p.shape)
        else:
            p[...] = p + 0.1 * rng.standard_normal(p.shape)


@pytest.fixture(scope="module")
def swin_t():
    """One Swin-T (float32, eval) for every test here that only reads it or runs a forward."""
    return minswin.create_model("swin_t").eval()


def official_param_shapes(c):
    """{official name: shape} of every parameter of config `c`, from SPEC 10-11 (the official
    code's modules), sharing no code with minswin. Counts Swin-S/B/L without allocating them."""
    C, p = c.embed_dim, c.patch_size
    shapes = {"patch_embed.proj.weight": (C, c.in_chans, p, p), "patch_embed.proj.bias": (C,),
              "patch_embed.norm.weight": (C,), "patch_embed.norm.bias": (C,)}
    side = c.img_size // p                                 # tokens per side at stage i
    for i, (depth, nH) in enumerate(zip(c.depths, c.num_heads)):
        d, hid = C * 2 ** i, int(C * 2 ** i * c.mlp_ratio)
        M = side if side <= c.window_size else c.window_size   # the official shrink rule
        for j in range(depth):
            b = f"layers.{i}.blocks.{j}."
            shapes.update({
                b + "norm1.weight": (d,), b + "norm1.bias": (d,),
                b + "attn.relative_position_bias_table": ((2 * M - 1) ** 2, nH),
                b + "attn.qkv.weight": (3 * d, d), b + "attn.qkv.bias": (3 * d,),
                b + "attn.proj.weight": (d, d), b + "attn.proj.bias": (d,),
                b + "norm2.weight": (d,), b + "norm2.bias": (d,),
                b + "mlp.fc1.weight": (hid, d), b + "mlp.fc1.bias": (hid,),
                b + "mlp.fc2.weight": (d, hid), b + "mlp.fc2.bias": (d,)})
        if i < len(c.depths) - 1:                          # merging at the end of the stage
            m = f"layers.{i}.downsample."
            shapes.update({m + "norm.weight": (4 * d,), m + "norm.bias": (4 * d,),
                           m + "reduction.weight": (2 * d, 4 * d)})
        side //= 2
    F = C * 2 ** (len(c.depths) - 1)
    shapes.update({"norm.weight": (F,), "norm.bias": (F,), "head.weight": (c.num_classes, F),
                   "head.bias": (c.num_classes,)})
    return shapes


def shapes_of(model):
    return {k: tuple(v.shape) for k, v in model.params.items()}


def test_swin_t_numbers(swin_t):
    m = swin_t
    assert m.num_params() == 28_288_354
    assert round(m.flops() / 1e9, 3) == 4.494
    shapes = [(b.input_resolution, b.window_size, b.shift_size) for _, b in m.blocks()]
    assert shapes[0] == ((56, 56), 7, 0) and shapes[1] == ((56, 56), 7, 3)
    assert shapes[-1] == ((7, 7), 7, 0) and shapes[-2] == ((7, 7), 7, 0)   # stage 4: no shift
    assert shapes_of(m) == official_param_shapes(m.config)   # every name and shape


@pytest.mark.parametrize("name", ["swin_s", "swin_b", "swin_l", "swin_b_384", "swin_l_384"])
def test_every_variant_builds_the_official_names_and_shapes(name):
    """Each variant's own depths, heads, window and image size, built for real, with the width
    cut to one channel per head (embed_dim = num_heads[0]) so that it costs little: the model
    has exactly the parameters of official_param_shapes. Swin-T checks the full width."""
    m = minswin.create_model(name, embed_dim=minswin.get_config(name).num_heads[0])
    assert shapes_of(m) == official_param_shapes(m.config)


def test_param_shapes_follow_an_irregular_config():
    """Three stages of odd depths, window shrunk to 3 in the last: the table follows."""
    m = minswin.create_model("swin_micro", img_size=48, depths=(1, 3, 2), num_heads=(2, 4, 8),
                             embed_dim=16, mlp_ratio=2.5, num_classes=7)
    assert m.params["layers.2.blocks.1.attn.relative_position_bias_table"].shape == (25, 8)
    assert shapes_of(m) == official_param_shapes(m.config)


@pytest.mark.parametrize("name,params,gflops", [("swin_s", 49_606_258, 8.747),
                                                ("swin_b", 87_768_224, 15.438),
                                                ("swin_l", 196_532_476, 34.487)])
def test_official_variants(name, params, gflops):
    """Official counts at full width, from the shapes the test above ties to the real model
    (building Swin-L for this allocates about 1.6 GB and takes seconds)."""
    config = minswin.get_config(name)
    assert sum(int(np.prod(s)) for s in official_param_shapes(config).values()) == params
    assert round(minswin.flops.model_flops(config) / 1e9, 3) == gflops


def test_swin_t_forward_shapes_and_any_input_size(rng, swin_t):
    m = swin_t
    x = rng.standard_normal((1, 224, 224, 3)).astype(np.float32)
    logits, trace = m.trace(x)
    assert logits.shape == (1, 1000)
    got = dict(trace)
    assert got["patch_embed"] == (1, 56, 56, 96)
    assert got["layers.0.downsample"] == (1, 28, 28, 192)
    assert got["layers.2.downsample"] == (1, 7, 7, 768)
    assert got["avgpool"] == (1, 768)
    y, t = m.trace(rng.standard_normal((1, 200, 260, 3)).astype(np.float32))
    assert y.shape == (1, 1000) and np.isfinite(y).all()
    assert dict(t)["patch_embed"] == (1, 50, 65, 96)
    assert dict(t)["layers.2.downsample"] == (1, 7, 9, 768)


def _block(rng, shift, drop_path=0.0):
    blk = SwinTransformerBlock(8, (6, 6), 2, 3, shift, 4.0, drop_path, rng, np.float64)
    for k, p in blk.params.items():
        p[...] = p + 0.3 * rng.standard_normal(p.shape)
    return blk


@pytest.mark.parametrize("shift", [0, 1])
@pytest.mark.parametrize("size", [(6, 6), (7, 5), (3, 7)])
def test_block_backward_directional(rng, shift, size):
    """Divisible, padded, and (3, 7): one window covers H, so only W is shifted."""
    blk = _block(rng, shift)
    assert blk.window_shift_for(*size)[1] == ((0, 0) if shift == 0 else
                                              {(3, 7): (0, 1)}.get(size, (1, 1)))
    report = check_module(blk, rng.standard_normal((2, *size, 8)), tol=TOL_BLOCK)
    assert report.passed, str(report)


class _SameDropPathMasks:
    """A block in train mode whose every forward draws the same DropPath masks, so central
    differences compare one function (check_module refuses train mode for that reason)."""

    def __init__(self, blk, seed):
        self.blk, self.seed = blk.train(), seed
        self.params, self.grads = blk.params, blk.grads

    def forward(self, x):
        self.blk.rng = np.random.default_rng(self.seed)
        return self.blk.forward(x)

    def backward(self, dout):
        return self.blk.backward(dout)

    def zero_grad(self):
        self.blk.zero_grad()


def test_block_backward_with_drop_path_in_training(rng):
    blk = _block(rng, 1, drop_path=0.5)
    wrapped = _SameDropPathMasks(blk, seed=7)
    x = rng.standard_normal((6, 6, 6, 8))
    wrapped.forward(x)
    _, dp1, dp2 = blk.cache
    s1, s2 = dp1.scale.ravel(), dp2.scale.ravel()
    assert (s1 == 0).any() and (s2 == 0).any() and (s1 != s2).any()   # both masks bite
    report = check_module(wrapped, x, tol=TOL_BLOCK)
    assert report.passed, str(report)


def test_check_module_flags_a_wrong_parameter_gradient(rng):
    blk = _block(rng, 1).eval()
    real = blk.backward

    def wrong(dout):
        dx = real(dout)
        blk.grads["attn.proj.bias"] *= 2                  # a backward that double-counts
        return dx
    blk.backward = wrong
    report = check_module(blk, rng.standard_normal((2, 6, 6, 8)), tol=TOL_BLOCK)
    verdicts = {r.name: r.verdict for r in report.rows}
    assert verdicts.pop("attn.proj.bias") == "WRONG"
    assert set(verdicts.values()) == {"ok"}


@pytest.mark.parametrize("size", [(32, 32), (36, 28)])
def test_whole_model_backward_directional(rng, size):
    """Input and every parameter, shifted blocks, padding (36x28), DropPath in eval."""
    m = tiny().eval()
    randomise(m, rng)
    report = check_module(m, rng.standard_normal((2, *size, 3)), tol=TOL_MODEL)
    print(report)
    assert len(report.rows) == len(m.params) + 1
    assert report.passed, str(report)


def test_train_mode_drop_path_is_per_sample_and_eval_is_identity(rng):
    m = tiny(drop_path_rate=0.9)
    x = rng.standard_normal((4, 32, 32, 3))
    m.eval()
    a, b = m.forward(x), m.forward(x)
    np.testing.assert_array_equal(a, b)
    m.train()
    c = m.forward(x)
    assert not np.allclose(a, c)


def test_gradients_accumulate_and_zero(rng):
    m = tiny().eval()
    x = rng.standard_normal((1, 32, 32, 3))
    d = rng.standard_normal((1, 5))
    m.zero_grad()
    m.forward(x)
    m.backward(d)
    g1 = {k: v.copy() for k, v in m.grads.items()}
    m.forward(x)
    m.backward(d)
    np.testing.assert_allclose(m.grads["head.weight"], 2 * g1["head.weight"])
    m.zero_grad()
    assert all(not g.any() for g in m.grads.values())
    assert set(m.grads) == set(m.params)


def test_float32_model_matches_float64(rng):
    m64, m32 = tiny("float64"), tiny("float32")
    x = rng.standard_normal((2, 32, 32, 3))
    y64 = m64.forward(x)
    y32 = m32.forward(x.astype(np.float32))
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("x,err,msg", [
    (np.zeros((32, 32, 3)), ValueError, r"x: expected a 4-d array, got shape \(32, 32, 3\)"),
    (np.zeros((1, 32, 32, 1)), ValueError, r"x: expected last axis of size 3, got shape"),
    (np.zeros((1, 32, 32, 3), np.uint8), TypeError, r"x: expected dtype float32 or float64, "
                                                    r"got uint8"),
    (np.zeros((1, 32, 32, 3), np.float16), TypeError, r"got float16"),
    (np.zeros((1, 32, 32, 3), np.float32), TypeError, r"x: expected dtype float64 like the "
                                                      r"model's weights, got float32"),
])
def test_model_bad_input(x, err, msg):
    with pytest.raises(err, match=msg):
        tiny().forward(x)


def test_bad_configs():
    with pytest.raises(ValueError, match=r"num_heads: stage 0 has width 48, which 5 heads"):
        minswin.create_model("swin_micro", num_heads=(5, 10))
    with pytest.raises(ValueError, match=r"name: expected one of .*got 'swin_x'"):
        minswin.create_model("swin_x")
    with pytest.raises(ValueError, match=r"unknown config field\(s\) \['windw_size'\]"):
        minswin.create_model("swin_micro", windw_size=3)
    with pytest.raises(TypeError, match="dtype: expected float32 or float64, got float16"):
        minswin.create_model("swin_micro", dtype="float16")


def test_flops_formulas_from_the_explainer(swin_t):
    f = minswin.flops
    assert f.msa_saving(224, 224, 3, 7) == 15_091_034_112
    h = w = 56
    C, M = 96, 7
    assert f.msa_flops(h, w, C) == 4 * h * w * C ** 2 + 2 * (h * w) ** 2 * C
    assert f.wmsa_flops(h, w, C, M) == 4 * h * w * C ** 2 + 2 * M ** 2 * h * w * C
    parts = swin_t.flops_breakdown()
    assert round(parts["layers.0.blocks"] / 1e9, 3) == 0.754
    assert round(parts["layers.2.blocks"] / 1e9, 3) == 2.126


def test_shift_at_sizes_other_than_img_size(swin_t):
    """Official at the model's own size, torchvision elsewhere (SPEC "decides" 3-4)."""
    last = swin_t.layers[3].blocks[1]
    assert last.window_shift_for(7, 7) == ((7, 7), (0, 0))        # 224: one window, no shift
    assert last.window_shift_for(14, 14) == ((14, 14), (3, 3))    # 448: shifted as in tv
    assert last.window_shift_for(7, 10) == ((7, 14), (0, 3))      # per axis
    small = minswin.create_model("swin_micro", img_size=8)         # 2x2 tokens: window 2
    assert small.layers[0].blocks[1].window_size == 2
    assert small.layers[0].blocks[1].window_shift_for(4, 4) == ((4, 4), (1, 1))


def test_attention_weights_shape_for_plain_and_shifted_blocks(rng):
    m = minswin.create_model("swin_micro").eval()
    m.forward(rng.standard_normal((2, 32, 32, 3)).astype(np.float32))
    for blk in m.layers[0].blocks:                                 # 8x8 tokens, 4 windows
        w = blk.attention_weights()
        assert w.shape == (2, 4, 3, 16, 16)
        np.testing.assert_allclose(w.sum(-1), 1, rtol=1e-5)
    mask = minswin.attention_mask(8, 8, 4, 2)                       # the shifted block's
    for k in range(4):                                             # window order pinned
        assert (w[:, k][..., mask[k] != 0] < 1e-30).all()


def test_check_module_refuses_train_mode(rng):
    m = tiny().train()
    with pytest.raises(ValueError, match="module: expected eval mode, got train mode"):
        check_module(m, rng.standard_normal((1, 32, 32, 3)))
