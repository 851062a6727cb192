"""Swin V2 without torch: configs, initialisation, the block and network backward (float64,
directional central differences), FLOPs, V2 checkpoints, and v1 weights moved to another
window with load_state_dict(resize_windows=True)."""
import math

import numpy as np
import pytest
from conftest import NEEDS_GPU

import minswin
from minswin.gradcheck import TOL_MODEL, check_module
from minswin.model_v2 import SwinTransformerV2, SwinTransformerV2Block
from minswin.ops.masks import attention_mask, relative_position_index


def small_v2(**kw):
    cfg = dict(dtype="float64", img_size=32, embed_dim=8, depths=(2, 2), num_heads=(2, 4),
               window_size=4, num_classes=5)
    cfg.update(kw)
    return minswin.create_model("swinv2_t", **cfg)


def randomise(model, seed=0):
    r = np.random.default_rng(seed)
    for k, p in model.params.items():
        if k.endswith("logit_scale"):
            v = math.log(10.0) + 0.5 * r.standard_normal(p.shape)
        elif k.endswith((".bias", "q_bias", "v_bias")):
            v = 0.5 * r.standard_normal(p.shape)
        elif p.ndim == 1:
            v = 1.0 + 0.5 * r.standard_normal(p.shape)
        else:
            v = r.standard_normal(p.shape) / np.sqrt(np.prod(p.shape[1:]))
        p[...] = v


# ---------------------------------------------------------------------------- configs, init

@pytest.mark.parametrize("name, window, dim, depths", [
    ("swinv2_t", 8, 96, (2, 2, 6, 2)), ("swinv2_s", 8, 96, (2, 2, 18, 2)),
    ("swinv2_b", 8, 128, (2, 2, 18, 2)), ("swinv2_t_w16", 16, 96, (2, 2, 6, 2)),
    ("swinv2_s_w16", 16, 96, (2, 2, 18, 2)), ("swinv2_b_w16", 16, 128, (2, 2, 18, 2))])
def test_official_configs(name, window, dim, depths):
    c = minswin.get_config(name)
    assert (c.img_size, c.window_size, c.embed_dim, c.depths) == (256, window, dim, depths)
    assert c.version == 2 and c.pretrained_windows == (0, 0, 0, 0)


def test_create_model_overrides_and_pretrained_window_sizes():
    m = small_v2(pretrained_window_sizes=(3, 0))
    assert isinstance(m, SwinTransformerV2)
    assert [b.attn.pretrained_window_size for _, b in m.blocks()] == [3, 3, 0, 0]
    assert m.layers[0].blocks[0].attn.coords[0, 0, 0] == pytest.approx(
        -math.log2(1 + 3 / 2 * 8) / 3)                     # offset -3 over (3 - 1), times 8
    with pytest.raises(ValueError, match=r"pretrained_window_sizes: expected 2 integers >= 0"):
        small_v2(pretrained_window_sizes=(8, 8, 8, 8))
    with pytest.raises(ValueError, match="unknown config field.*pretrained_window_sizes"):
        minswin.create_model("swin_t", pretrained_window_sizes=(0, 0, 0, 0))


def test_initialisation_is_the_official_one():
    m = minswin.create_model("swinv2_digits", num_classes=10)
    p = m.params
    blk = "layers.0.blocks.1."
    assert np.all(p[blk + "norm1.weight"] == 0) and np.all(p[blk + "norm2.bias"] == 0)
    assert np.allclose(p[blk + "attn.logit_scale"], math.log(10))
    assert np.all(p[blk + "attn.q_bias"] == 0) and np.all(p[blk + "attn.v_bias"] == 0)
    assert p[blk + "attn.cpb_mlp.0.weight"].shape == (512, 2)
    assert p[blk + "attn.cpb_mlp.2.weight"].shape == (3, 512)
    assert np.all(p["layers.0.downsample.norm.weight"] == 1)
    assert p["layers.0.downsample.reduction.weight"].shape == (96, 192)
    assert not any("k_bias" in k or "relative_position_bias_table" in k for k in p)
    # res-post-norm with zero norms: every block starts as the identity
    x = np.random.default_rng(0).standard_normal((1, 8, 8, 48)).astype(np.float32)
    assert np.array_equal(m.layers[0].blocks[1].forward(x), x)


# ---------------------------------------------------------------------------- backward

@pytest.mark.parametrize("hw", [(8, 8), (7, 5)])
def test_block_backward(hw):
    rng = np.random.default_rng(1)
    blk = SwinTransformerV2Block(8, (8, 8), 2, 4, 2, 4.0, 0.0, 0, rng, np.float64)
    for k, p in blk.params.items():
        p[...] = rng.standard_normal(p.shape) * (0.3 if p.ndim > 1 else 1.0) + \
            (1.0 if k.endswith("norm1.weight") or k.endswith("norm2.weight") else 0.0)
    x = rng.standard_normal((2, *hw, 8))
    report = check_module(blk, x, tol=1e-6)
    print(report)
    assert report.passed, str(report)


def test_network_backward():
    m = small_v2()
    m.eval()
    randomise(m)
    x = np.random.default_rng(2).standard_normal((2, 32, 32, 3))
    report = check_module(m, x, tol=TOL_MODEL)
    print(report)
    assert report.passed, str(report)


def test_training_mode_runs_droppath_and_shapes():
    m = minswin.create_model("swinv2_digits", num_classes=10).train()
    x = np.random.default_rng(3).standard_normal((4, 16, 16, 3)).astype(np.float32)
    logits = m.forward(x)
    assert logits.shape == (4, 10) and logits.dtype == np.float32
    dx = m.backward(np.ones_like(logits))
    assert dx.shape == x.shape and all(np.isfinite(g).all() for g in m.grads.values())


# ---------------------------------------------------------------------------- FLOPs

@pytest.mark.parametrize("name, gflops", [
    ("swinv2_t", 5.9), ("swinv2_s", 11.5), ("swinv2_b", 20.3),
    ("swinv2_t_w16", 6.6), ("swinv2_s_w16", 12.6), ("swinv2_b_w16", 21.8)])
def test_flops_match_the_official_table(name, gflops):
    """The official README's FLOPs for the ImageNet-1k SwinV2 models at 256 (official flops(),
    MACs); V2's merging counts LayerNorm(2C) on the halved map."""
    from minswin.flops import model_flops
    assert round(model_flops(minswin.get_config(name)) / 1e9, 1) == gflops


def test_v2_merging_count_differs_from_v1_only_there():
    from minswin.flops import model_flops_breakdown
    v1 = model_flops_breakdown(minswin.get_config("swin_t", img_size=256, window_size=8))
    v2 = model_flops_breakdown(minswin.get_config("swinv2_t"))
    diff = {k for k in v1 if v1[k] != v2[k]}
    assert diff == {"layers.0.downsample", "layers.1.downsample", "layers.2.downsample"}
    # LayerNorm(4C) on H*W*C values counted H*W*C (v1), LayerNorm(2C) on half as many (V2)
    assert v1["layers.0.downsample"] - v2["layers.0.downsample"] == 64 * 64 * 96 // 2


# ---------------------------------------------------------------------------- V2 checkpoints

def test_official_v2_checkpoint_with_buffers_round_trips(tmp_path):
    m = small_v2()
    randomise(m)
    state = dict(m.state_dict())
    for name, blk in m.blocks():
        state[f"{name}.attn.relative_coords_table"] = blk.attn.coords[None].astype(np.float32)
        state[f"{name}.attn.relative_position_index"] = relative_position_index(blk.window_size)
        (Hp, Wp), shift = blk.window_shift_for(*blk.input_resolution)
        if any(shift):
            state[f"{name}.attn_mask"] = attention_mask(Hp, Wp, blk.window_size, shift)
    path = tmp_path / "v2.safetensors"
    minswin.save_checkpoint(path, state)
    other = small_v2(seed=5)
    other.load_state_dict(minswin.load_checkpoint(path), strict=True)
    for k in m.params:
        assert np.array_equal(m.params[k], other.params[k]), k


def test_torchvision_qkv_bias_with_a_nonzero_k_third_is_refused():
    m = small_v2()
    other = small_v2(seed=3)
    before = {k: v.copy() for k, v in other.params.items()}
    state = dict(m.state_dict())
    key = "layers.0.blocks.0.attn."
    C = 8
    state[key + "qkv.bias"] = np.concatenate([state.pop(key + "q_bias"), np.full(C, 0.5),
                                              state.pop(key + "v_bias")])
    tv = {("features.1.0." + k[len("layers.0.blocks.0."):] if k.startswith(key) else k): v
          for k, v in state.items()}
    with pytest.raises(ValueError, match=r"k third .* must be zero.*max \|k bias\| = 0.5"):
        other.load_state_dict(tv, strict=False)
    assert all(np.array_equal(before[k], other.params[k]) for k in before)


def test_v2_problems_are_listed_with_the_others_in_one_error():
    """A bad torchvision qkv.bias (V2's own check) and a mis-shaped head (the common check)
    are both named in the one refusal, with the format the names were read in."""
    m = small_v2()
    state = dict(m.state_dict())
    key = "layers.0.blocks.0.attn."
    state[key + "qkv.bias"] = np.concatenate([state.pop(key + "q_bias"), np.full(8, 0.5),
                                              state.pop(key + "v_bias")])
    state["head.weight"] = state["head.weight"][:1]
    tv = {("features.1.0." + k[len("layers.0.blocks.0."):] if k.startswith(key) else k): v
          for k, v in state.items()}
    with pytest.raises(ValueError, match=r"2 problem\(s\) .* \(torchvision names\)") as err:
        small_v2(seed=3).load_state_dict(tv)
    assert "k third" in str(err.value) and "'head.weight': expected shape" in str(err.value)


def test_coordinate_table_of_another_window_is_refused_then_dropped_with_the_flag(capsys):
    m8 = small_v2(window_size=2)                           # checkpoint made with window 2
    state = dict(m8.state_dict())
    state["layers.0.blocks.0.attn.relative_coords_table"] = \
        m8.layers[0].blocks[0].attn.coords[None].copy()
    state["layers.0.blocks.0.attn.relative_position_index"] = relative_position_index(2)
    m4 = small_v2(window_size=4, pretrained_window_sizes=(2, 2), seed=1)
    before = {k: v.copy() for k, v in m4.params.items()}
    with pytest.raises(ValueError, match=r"relative_coords_table' \(1, 3, 3, 2\) does not fit"):
        m4.load_state_dict(state)
    assert all(np.array_equal(before[k], m4.params[k]) for k in before)
    m4.load_state_dict(state, resize_windows=True)         # nothing to resize in V2
    assert "dropped 2 buffer(s)" in capsys.readouterr().out
    assert all(np.array_equal(m8.params[k], m4.params[k]) for k in m8.params)


def test_coordinate_table_beyond_float32_round_off_is_refused():
    m = small_v2()
    state = dict(m.state_dict())
    bad = m.layers[0].blocks[0].attn.coords[None].copy()
    bad[0, 0, 0, 0] += 1e-4
    state["layers.0.blocks.0.attn.relative_coords_table"] = bad
    with pytest.raises(ValueError, match=r"differs from the coordinates minswin computes"):
        small_v2().load_state_dict(state)
    state["layers.0.blocks.0.attn.relative_coords_table"][0, 0, 0, 0] -= 1e-4 - 3e-7
    small_v2().load_state_dict(state)                      # within float32 round-off


# ---------------------------------------------------------------------------- v1: another window

def v1(img, window, seed=0):
    return minswin.create_model("swin_t", img_size=img, window_size=window, embed_dim=8,
                                depths=(2, 2), num_heads=(1, 2), num_classes=3, seed=seed)


def v1_state_with_buffers(m):
    state = dict(m.state_dict())
    for name, blk in m.blocks():
        state[f"{name}.attn.relative_position_index"] = relative_position_index(blk.window_size)
        (Hp, Wp), shift = blk.window_shift_for(*blk.input_resolution)
        if any(shift):
            state[f"{name}.attn_mask"] = attention_mask(Hp, Wp, blk.window_size, shift)
    return state


def test_v1_checkpoint_for_another_window_is_refused_without_the_flag():
    old, new = v1(224, 7), v1(384, 12, seed=1)
    before = {k: v.copy() for k, v in new.params.items()}
    with pytest.raises(ValueError) as err:
        new.load_state_dict(v1_state_with_buffers(old), strict=True)
    msg = str(err.value)
    assert "'layers.0.blocks.0.attn.relative_position_bias_table'" in msg
    assert "(169, 1)" in msg and "(529, 1)" in msg and "resize_windows=True" in msg
    assert all(np.array_equal(before[k], new.params[k]) for k in before)


def test_v1_checkpoint_for_another_window_loads_resized(capsys):
    old, new = v1(224, 7), v1(384, 12, seed=1)
    randomise(old)
    new.load_state_dict(v1_state_with_buffers(old), strict=True, resize_windows=True)
    out = capsys.readouterr().out
    assert "resized 4 relative position bias table(s)" in out
    assert "layers.1.blocks.1.attn.relative_position_bias_table: (169, 2) -> (529, 2)" in out
    for k, p in new.params.items():
        if k.endswith("relative_position_bias_table"):
            want = minswin.resize_relative_bias_table(old.params[k].astype(np.float64), 12)
            assert np.allclose(p, want, rtol=0, atol=1e-6), k
        else:
            assert np.array_equal(p, old.params[k]), k
    x = np.random.default_rng(0).standard_normal((1, 384, 384, 3)).astype(np.float32)
    assert np.isfinite(new.forward(x)).all()


def test_same_window_needs_no_flag_and_prints_nothing(capsys):
    old, new = v1(224, 7), v1(224, 7, seed=1)
    new.load_state_dict(v1_state_with_buffers(old), resize_windows=True)
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------------------- NumPy vs CuPy

@pytest.mark.parametrize("dtype, tol", [("float64", 1e-11), ("float32", 2e-4)])
@NEEDS_GPU[0]
@NEEDS_GPU[1]
def test_numpy_cupy_parity(dtype, tol):
    """The V2 model on CuPy (a GPU, or the strict stand-in) gives NumPy's numbers: logits, dx
    and every gradient, at a size that pads (36x28 on a 32-px model)."""
    import cupy
    ref = small_v2(dtype=dtype, seed=3)
    ref.eval()
    randomise(ref)
    r = np.random.default_rng(4)
    x = r.standard_normal((2, 36, 28, 3)).astype(dtype)
    d = r.standard_normal((2, 5)).astype(dtype)
    y_np, dx_np = ref.forward(x), ref.backward(d)
    minswin.use("cupy")
    try:
        gpu = small_v2(dtype=dtype, seed=3)
        gpu.eval()
        gpu.load_state_dict(ref.state_dict())
        y_cp = gpu.forward(cupy.asarray(x))
        dx_cp = gpu.backward(cupy.asarray(d))
    finally:
        minswin.use("numpy")
    from minswin.backend import to_numpy
    np.testing.assert_allclose(to_numpy(y_cp), y_np, rtol=tol, atol=tol)
    np.testing.assert_allclose(to_numpy(dx_cp), dx_np, rtol=tol, atol=tol)
    for k in ref.grads:
        np.testing.assert_allclose(to_numpy(gpu.grads[k]), ref.grads[k], rtol=tol, atol=tol,
                                   err_msg=k)

