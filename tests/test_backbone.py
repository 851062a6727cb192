"""Swin as a backbone: non-square img_size=(H, W), features_only stage maps (forward and
backward), forward_features; against the official reference (tests/torch_reference.py) and
timm in float64.

The window rule at the built size is the official one (min(H, W) <= M: window min(H, W),
shift 0). timm decides per axis instead (a (2, 4) window on a 2x4 map, shift (0, 2) on a 4x8
map with M = 4), so timm is compared only where the two rules agree: (64, 128) with window 2,
and a padded stage (4x6 -> 4x8) that has no shifted block. Expected errors ~1e-14; gate 1e-9.
"""
import json
import sys
import types

import numpy as np
import pytest

import minswin
from minswin.checkpoint import timm_to_official
from minswin.flops import model_flops_breakdown
from minswin.gradcheck import numeric_vjp, rel_error

torch = pytest.importorskip("torch", reason="torch (the test oracle) is not installed")
import torch_reference as ref  # noqa: E402
from test_torch_oracle import N, T, randomise  # noqa: E402
from test_v2_model import randomise as randomise_v2  # noqa: E402

TOL = 1e-9
TINY = dict(embed_dim=8, num_heads=(1, 2, 4, 8), drop_path_rate=0.0)


def assert_close(name, ours, theirs, errors):
    err = float(np.max(np.abs(ours - theirs) / (1 + np.abs(theirs))))
    errors[name] = err
    assert ours.shape == theirs.shape, f"{name}: shape {ours.shape} vs {theirs.shape}"
    assert err <= TOL, f"{name}: error {err:.2e} > {TOL:.0e}"


# ---------------------------------------------------------------------------- img_size (H, W)

def test_img_size_pair_is_kept_and_checked():
    c = minswin.get_config("swin_t", img_size=(64, 128))
    assert c.img_size == (64, 128) and c.img_hw == (64, 128) and c.img_name == "64x128"
    assert minswin.get_config("swin_t", img_size=[96, 96]).img_size == 96   # square: an int
    assert c.stage_resolutions() == ((16, 32), (8, 16), (4, 8), (2, 4))
    for bad in [(64,), (64, 0), (64, 128, 3), "64"]:
        with pytest.raises(ValueError, match="img_size"):
            minswin.get_config("swin_t", img_size=bad)


def official_decisions(model):
    return [(b.input_resolution, b.window_size, b.shift_size) for _, b in model.blocks()]


@pytest.mark.parametrize("name", ["swin_t", "swinv2_t"])
def test_official_rule_at_64x128_window_4(name):
    """Stage 2 is 4x8: min = M, so the window stays 4 and the shift goes off (a square map's
    rule would shift by (0, 2) there); stage 3 is 2x4: window 2, no shift. V2 decides alike."""
    model = minswin.create_model(name, img_size=(64, 128), window_size=4, depths=(2, 2, 2, 2),
                                 **TINY)
    assert official_decisions(model)[1::2] == [((16, 32), 4, 2), ((8, 16), 4, 2),
                                               ((4, 8), 4, 0), ((2, 4), 2, 0)]
    assert model.layers[2].blocks[1].window_shift_for(4, 8) == ((4, 8), (0, 0))


def official_pair(hw, window, depths, seed=0):
    model = minswin.create_model("swin_t", dtype="float64", img_size=hw, window_size=window,
                                 depths=depths, num_classes=5, seed=seed, **TINY)
    model.eval()
    randomise(model, seed)
    net = ref.from_config(model.config).double().eval()
    net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in model.state_dict().items()})
    return model, net


@pytest.mark.parametrize("hw, window", [((64, 128), 4),
                                        pytest.param((192, 256), 8, marks=pytest.mark.slow)])
def test_non_square_network_equals_the_official_reference(hw, window):
    """Logits, dx and every parameter gradient. (64, 128), M = 4: the official model exactly.
    (192, 256), M = 8: stage 3 is 6x8, its window shrinks to 6, which does not divide 8: the
    official code cannot run it (its view fails); minswin and the reference pad to 6x12."""
    model, net = official_pair(hw, window, (2, 2, 2, 2))
    x = np.random.default_rng(1).standard_normal((1, *hw, 3))
    logits = model.forward(x)
    dlogits = np.random.default_rng(2).standard_normal(logits.shape)
    model.zero_grad()
    dx = model.backward(dlogits)
    tx = T(x)
    tlogits = net(tx)
    tlogits.backward(torch.from_numpy(dlogits))
    errors = {}
    assert_close("logits", logits, N(tlogits), errors)
    assert_close("dx", dx, N(tx.grad), errors)
    tgrads = {k: N(p.grad) for k, p in net.named_parameters()}
    assert set(tgrads) == set(model.grads)
    for k, g in model.grads.items():
        assert_close(k, g, tgrads[k], errors)
    print(f"\nworst {max(errors.values()):.1e}")


def test_flops_at_a_pair():
    """The official count at (H, W): patch embedding and LayerNorms scale with H*W, and the
    2x4 last stage counts two 2x2 windows (window min(H, W) = 2)."""
    c = minswin.get_config("swin_t", img_size=(64, 128), window_size=4, num_classes=0)
    sq = model_flops_breakdown(minswin.get_config("swin_t", img_size=64, window_size=4,
                                                  num_classes=0))
    got = model_flops_breakdown(c)
    assert got["patch_embed"] == 2 * sq["patch_embed"] and got["norm"] == 2 * sq["norm"]
    dim, heads = 768, 24
    attn = 4 * (4 * 3 * dim * dim + 4 * 4 * dim + 4 * 4 * dim + 4 * dim * dim) // 4   # N = 4
    one = 8 * dim + 2 * attn + 2 * 8 * dim * dim * 4 + 8 * dim
    assert got["layers.3.blocks"] == 2 * one
    assert heads                                            # (heads cancel in the count)
    assert minswin.create_model("swin_t", img_size=(64, 128), window_size=4,
                                num_classes=0).flops() == sum(got.values())
    with pytest.raises(ValueError, match="img_size"):
        model_flops_breakdown(c, img_size=(64, 100))


@pytest.mark.parametrize("name", ["swin_micro", "swinv2_digits"])
def test_save_and_load_pretrained_keep_the_pair(tmp_path, name):
    model = minswin.create_model(name, img_size=(16, 32), num_classes=3, dtype="float64")
    x = np.random.default_rng(0).standard_normal((1, 16, 32, 3))
    minswin.save_pretrained(model, tmp_path / "m")
    back = minswin.from_pretrained(tmp_path / "m", dtype="float64", verbose=False)
    assert back.config == model.config and back.config.img_size == (16, 32)
    assert np.array_equal(back.forward(x), model.eval().forward(x))
    # transformers' image_size may be a pair too
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["config"]["img_size"] == [16, 32]


def test_transformers_config_image_size_pair():
    from minswin.folders import _transformers
    cfg = {"model_type": "swin", "image_size": [64, 128], "patch_size": 4, "embed_dim": 8,
           "depths": [2, 2], "num_heads": [1, 2], "window_size": 4}
    config, _ = _transformers(cfg, {})
    assert config.img_size == (64, 128)


# ---------------------------------------------------------------------------- timm oracle

def timm_module(v2):
    """timm's Swin module (v1 or V2), or skip with why (see test_v2_oracle.import_references
    for the torchvision work-around)."""
    if "torchvision" not in sys.modules:
        for name in ("torchvision._meta_registrations", "torchvision._autograd_registrations"):
            sys.modules.setdefault(name, types.ModuleType(name))
    try:
        import timm
        import timm.models.swin_transformer_v2
    except (ImportError, RuntimeError, OSError) as err:
        pytest.skip(f"timm (the features_only oracle) is not importable here: {err}")
    return timm


def timm_key(k):
    """timm's features_only names (layers_0.…) -> official."""
    if k.startswith("layers_"):
        k = "layers." + k[len("layers_"):]
    return timm_to_official(k)


# (64, 128), M = 2: no stage shrinks, timm's per-axis rule and the official one agree.
# (64, 96), M = 4, depths (2, 2, 1): stage 2 is 4x6, padded to 4x8, with no shifted block
OWN = dict(img_size=(64, 128), window_size=2, depths=(2, 2, 2), num_heads=(1, 2, 4))
PADDED = dict(img_size=(64, 96), window_size=4, depths=(2, 2, 1), num_heads=(1, 2, 4))


def features_pair(v2, arch, out_indices, seed=0):
    timm = timm_module(v2)
    name = "swinv2_t" if v2 else "swin_t"
    model = minswin.create_model(name, dtype="float64", features_only=True,
                                 out_indices=out_indices, embed_dim=8, drop_path_rate=0.0,
                                 seed=seed, **arch)
    model.eval()
    (randomise_v2 if v2 else randomise)(model, seed)
    tname = "swinv2_tiny_window8_256" if v2 else "swin_tiny_patch4_window7_224"
    net = timm.create_model(tname, pretrained=False, features_only=True,
                            out_indices=out_indices, embed_dim=8, drop_path_rate=0.0,
                            **arch).double().eval()
    theirs = {timm_key(k): k for k in net.state_dict()
              if not k.endswith(("relative_position_index", "attn_mask",
                                 "relative_coords_table"))}
    assert set(theirs) == set(model.params)                # same parameters, nothing more
    net.load_state_dict({theirs[k]: torch.from_numpy(v.copy())
                         for k, v in model.params.items()}, strict=False)
    if v2:                                                 # our float64 coordinate tables
        bufs = dict(net.named_buffers())
        for bname, blk in model.blocks():
            key = timm_key(bname).replace("layers.", "layers_") + ".attn.relative_coords_table"
            assert np.allclose(N(bufs[key])[0], blk.attn.coords, atol=1e-6)
            bufs[key].copy_(torch.from_numpy(blk.attn.coords[None].copy()))
    return model, net, theirs


@pytest.mark.parametrize("v2", [False, True], ids=["v1", "V2"])
@pytest.mark.parametrize("arch, out_indices, unused", [
    (OWN, (0, 1, 2), None), (OWN, (0, 2), 1), (PADDED, (0, 1, 2), 0)],
    ids=["own-size", "own-size-two-maps-one-unused", "padded-stage"])
def test_features_only_equals_timm(v2, arch, out_indices, unused):
    """Every map, dx and every parameter gradient, with gradients arriving at several stages
    at once (None for the map at position `unused`)."""
    model, net, theirs = features_pair(v2, arch, out_indices)
    assert model.feature_info.channels() == net.feature_info.channels()
    assert model.feature_info.reduction() == net.feature_info.reduction()
    assert model.feature_info.module_name() == net.feature_info.module_name()
    x = np.random.default_rng(3).standard_normal((2, *arch["img_size"], 3))
    maps = model.forward(x)
    rng = np.random.default_rng(4)
    dmaps = [None if k == unused else rng.standard_normal(m.shape) for k, m in
             enumerate(maps)]
    model.zero_grad()
    dx = model.backward(dmaps)
    tx = T(x.transpose(0, 3, 1, 2))
    tmaps = net(tx)
    errors = {}
    for k, (m, t) in enumerate(zip(maps, tmaps)):
        assert_close(f"map {k}", m, N(t), errors)
    torch.autograd.backward([t for t, g in zip(tmaps, dmaps) if g is not None],
                            [torch.from_numpy(g) for g in dmaps if g is not None])
    assert_close("dx", dx, N(tx.grad).transpose(0, 2, 3, 1), errors)
    named = dict(net.named_parameters())
    for k, g in model.grads.items():
        tg = named[theirs[k]].grad
        assert_close(k, g, np.zeros_like(g) if tg is None else N(tg), errors)
    print(f"\nworst {max(errors.values()):.1e} over {len(errors)} arrays")


# ---------------------------------------------------------------------------- gradient checks

@pytest.mark.parametrize("name", ["swin_micro", "swinv2_digits"])
def test_features_backward_gradient_check(name):
    """Central differences of L = sum_k <dmap_k, map_k(x)> with gradients at stages 0 and 1
    at once: dx and a parameter of each stage (plus the patch embedding)."""
    model = minswin.create_model(name, img_size=(8, 12), patch_size=2, window_size=2,
                                 embed_dim=4, num_heads=(1, 2), features_only=True,
                                 dtype="float64", drop_path_rate=0.0)
    model.eval()
    (randomise_v2 if name.startswith("swinv2") else randomise)(model, 0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 8, 12, 3))
    maps = model.forward(x)
    dmaps = [rng.standard_normal(m.shape) for m in maps]
    model.zero_grad()
    dx = model.backward(dmaps)

    def loss_of_x(xv):
        return sum(float(np.sum(d * m)) for d, m in zip(dmaps, model.forward(xv)))
    num = numeric_vjp(lambda xv: np.array(loss_of_x(xv)), x, np.array(1.0))
    assert rel_error(dx, num) < 1e-7
    for key in ["layers.0.blocks.1.attn.proj.weight", "layers.0.downsample.reduction.weight",
                "layers.1.blocks.1.mlp.fc2.bias"]:
        p = model.params[key]
        keep = p.copy()

        def loss_of_p(pv):
            p[...] = pv
            try:
                return np.array(loss_of_x(x))
            finally:
                p[...] = keep
        assert rel_error(model.grads[key], numeric_vjp(loss_of_p, keep, np.array(1.0))) < 1e-7


def test_features_only_builds_only_what_it_uses_and_checks_gradients():
    full = minswin.create_model("swin_t", img_size=64, window_size=4, **TINY)
    feat = minswin.create_model("swin_t", img_size=64, window_size=4, features_only=True,
                                out_indices=(0, 1), **TINY)
    # same draws for the shared weights; no stage 2, 3, no merging after stage 1, no norm/head
    assert set(feat.params) == {k for k in full.params
                                if k.startswith(("patch_embed", "layers.0", "layers.1.blocks"))}
    assert all(np.array_equal(full.params[k], v) for k, v in feat.params.items())
    assert feat.feature_info == [dict(num_chs=8, reduction=4, module="layers.0"),
                                 dict(num_chs=16, reduction=8, module="layers.1")]
    x = np.zeros((1, 64, 64, 3), np.float32)
    maps = feat.forward(x)
    assert [m.shape for m in maps] == [(1, 16, 16, 8), (1, 8, 8, 16)]
    with pytest.raises(ValueError, match="dmaps: expected a list of 2"):
        feat.backward(maps[0])
    with pytest.raises(ValueError, match="every gradient is None"):
        feat.backward([None, None])
    with pytest.raises(ValueError, match=r"dmaps\[1\]"):
        feat.backward([None, maps[0]])
    with pytest.raises(ValueError, match="out_indices"):
        minswin.create_model("swin_t", features_only=True, out_indices=(0, 4))
    with pytest.raises(ValueError, match="out_indices"):
        minswin.create_model("swin_t", out_indices=(0,))
    assert minswin.create_model("swin_t", img_size=64, window_size=4, features_only=True,
                                out_indices=(-1,), **TINY).out_indices == (3,)


def test_forward_features_is_the_normed_map_before_pooling():
    model = minswin.create_model("swin_micro", num_classes=4, dtype="float64")
    x = np.random.default_rng(0).standard_normal((2, 32, 32, 3))
    fmap = model.forward_features(x)
    assert fmap.shape == (2, 4, 4, 96)
    logits = model.forward(x)
    assert np.allclose(logits, model.head.forward(fmap.mean(axis=(1, 2))), atol=1e-12)


def test_readme_swin_t_feature_info():
    """README's example: Swin-T's four maps, widths and strides (timm's swin_tiny's)."""
    model = minswin.create_model("swin_t", features_only=True, out_indices=(0, 1, 2, 3))
    assert model.feature_info.channels() == [96, 192, 384, 768]
    assert model.feature_info.reduction() == [4, 8, 16, 32]
    assert model.feature_info.module_name() == [f"layers.{i}" for i in range(4)]
