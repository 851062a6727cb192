"""Swin V2 against the references in float64: timm's SwinTransformerV2 at its own image size,
torchvision's swin_v2_t architecture (SwinTransformer with SwinTransformerBlockV2 and
PatchMergingV2) at sizes that pad; logits, dx and every parameter gradient. Also: the ops
against torch autograd, parameter counts equal to timm's for the six configs, and V2
checkpoints in timm's and torchvision's names.

Small widths and depths keep it fast; the cpb_mlp keeps its 512 hidden units.
Expected errors as in test_torch_oracle.py: the network <= 1e-9, in practice ~1e-14.
"""
import math
import sys
import types

import numpy as np
import pytest

import minswin
from minswin.checkpoint import timm_to_official
from minswin.ops.continuous_bias import (
    continuous_bias_backward,
    continuous_bias_forward,
    log_spaced_coordinates,
)
from minswin.ops.cosine_attention import cosine_attention_backward, cosine_attention_forward
from minswin.ops.masks import attention_mask, relative_position_index

torch = pytest.importorskip("torch", reason="torch (the test oracle) is not installed")
from test_torch_oracle import N, T, assert_close  # noqa: E402  (v1's oracle helpers)
from test_v2_model import randomise  # noqa: E402

TOL_OP = 1e-10
TOL_NET = 1e-9


def import_references():
    """(timm's swin_transformer_v2 module, torchvision.models.swin_transformer), or skip.

    The torchvision wheel in some environments is a CUDA build beside a CPU torch: its _C
    library does not load, and its two registration modules then fail on import (they
    register kernels for C ops such as nms that do not exist). The Swin code needs neither,
    so they are replaced by empty modules before the first import of torchvision.
    """
    if "torchvision" not in sys.modules:
        for name in ("torchvision._meta_registrations", "torchvision._autograd_registrations"):
            sys.modules.setdefault(name, types.ModuleType(name))
    try:
        import timm.models.swin_transformer_v2 as timm_v2
        import torchvision.models.swin_transformer as tv_swin
    except (ImportError, RuntimeError, OSError) as err:   # absent, or a broken install
        pytest.skip(f"timm and torchvision are the V2 oracles, not importable here: {err}")
    return timm_v2, tv_swin


# ---------------------------------------------------------------------------- ops vs autograd

def test_cosine_attention_vs_torch():
    rng = np.random.default_rng(1)
    B_, N_, C, nH, M = 8, 4, 8, 2, 2
    mask = attention_mask(4, 4, M, (1, 1))                 # (4, 4, 4)
    ins = dict(x=rng.standard_normal((B_, N_, C)), qkv_weight=rng.standard_normal((3 * C, C)),
               q_bias=rng.standard_normal(C), v_bias=rng.standard_normal(C),
               logit_scale=np.array([1.5, 5.0]).reshape(nH, 1, 1),   # head 1 above the clamp
               proj_weight=rng.standard_normal((C, C)), proj_bias=rng.standard_normal(C),
               bias=rng.standard_normal((nH, N_, N_)))
    out, cache = cosine_attention_forward(**ins, mask=mask, num_heads=nH)
    dout = rng.standard_normal(out.shape)
    ours = cosine_attention_backward(dout, cache)
    t = {k: T(v) for k, v in ins.items()}
    F = torch.nn.functional
    qkv = F.linear(t["x"], t["qkv_weight"],
                   torch.cat([t["q_bias"], torch.zeros(C, dtype=torch.float64), t["v_bias"]]))
    q, k, v = qkv.reshape(B_, N_, 3, nH, -1).permute(2, 0, 3, 1, 4)
    s = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
    s = s * torch.clamp(t["logit_scale"], max=math.log(100.0)).exp() + t["bias"]
    s = (s.view(-1, 4, nH, N_, N_) + T(mask, False)[None, :, None]).view(-1, nH, N_, N_)
    o = (s.softmax(-1) @ v).transpose(1, 2).reshape(B_, N_, C)
    tout = F.linear(o, t["proj_weight"], t["proj_bias"])
    grads = torch.autograd.grad(tout, list(t.values()), torch.from_numpy(dout))
    errors = {}
    assert_close("out", out, N(tout), TOL_OP, errors)
    for (name, _), g, ref in zip(ins.items(), ours, grads):
        assert_close(name, g, N(ref), TOL_OP, errors)
    assert np.all(ours[4][1] == 0) and N(grads[4])[1, 0, 0] == 0   # above the clamp


def test_continuous_bias_vs_torch():
    rng = np.random.default_rng(2)
    M, nH = 3, 2
    coords = log_spaced_coordinates(M, pretrained_window=2)
    ins = dict(fc1_weight=rng.standard_normal((512, 2)), fc1_bias=rng.standard_normal(512),
               fc2_weight=rng.standard_normal((nH, 512)) / 20)
    index = relative_position_index(M)
    out, cache = continuous_bias_forward(coords, **ins, index=index)
    dout = rng.standard_normal(out.shape)
    ours = continuous_bias_backward(dout, cache)[1:]
    t = {k: T(v) for k, v in ins.items()}
    h = torch.relu(T(coords, False) @ t["fc1_weight"].T + t["fc1_bias"])
    table = (h @ t["fc2_weight"].T).view(-1, nH)
    tout = 16 * torch.sigmoid(table[torch.from_numpy(index).view(-1)]
                              .view(M * M, M * M, nH).permute(2, 0, 1))
    grads = torch.autograd.grad(tout, list(t.values()), torch.from_numpy(dout))
    errors = {}
    assert_close("bias", out, N(tout), TOL_OP, errors)
    for name, g, ref in zip(ins, ours, grads):
        assert_close(name, g, N(ref), TOL_OP, errors)


# ---------------------------------------------------------------------------- parameter counts

@pytest.mark.parametrize("name, timm_name", [
    ("swinv2_t", "swinv2_tiny_window8_256"), ("swinv2_t_w16", "swinv2_tiny_window16_256"),
    pytest.param("swinv2_s", "swinv2_small_window8_256", marks=pytest.mark.slow),
    pytest.param("swinv2_s_w16", "swinv2_small_window16_256", marks=pytest.mark.slow),
    pytest.param("swinv2_b", "swinv2_base_window8_256", marks=pytest.mark.slow),
    pytest.param("swinv2_b_w16", "swinv2_base_window16_256", marks=pytest.mark.slow)])
def test_parameter_count_equals_timm(name, timm_name):
    import_references()
    import timm
    with torch.device("meta"):                             # shapes only, no memory
        net = timm.create_model(timm_name)
    theirs = {timm_to_official(k): tuple(p.shape) for k, p in net.named_parameters()}
    model = minswin.create_model(name)
    ours = {k: tuple(p.shape) for k, p in model.params.items()}
    assert ours == theirs                                  # same names, same shapes
    assert model.num_params() == sum(p.numel() for p in net.parameters())
    assert not any("k_bias" in k for k in ours)


# ---------------------------------------------------------------------------- whole networks

@pytest.fixture(params=["plain", "fast"])
def tier(request):
    """The whole network runs on both tiers (minswin.use_fast): the cosine attention has a
    fast twin; the rest of V2 reuses v1's layers, which have theirs."""
    previous = minswin.use_fast(request.param == "fast")
    yield request.param
    minswin.use_fast(previous)


def randomise_v2(model, seed=0):
    """Every term counts (test_v2_model.randomise: N(0, 1/fan_in) weights, LN affines
    1 + N(0, .5^2), not the official zeros, which would switch every branch off; biases
    N(0, .5^2), logit_scale around log 10), and one head above the clamp."""
    randomise(model, seed)
    model.params["layers.0.blocks.1.attn.logit_scale"][0] = 5.0   # > log 100: clamped


def compare(model, net, x, torch_x, their_grads, errors, seed=1):
    """minswin's logits, dx and gradients vs a torch network called on torch_x (a leaf).
    their_grads() -> {official name: gradient} after backward."""
    logits = model.forward(x)
    dlogits = np.random.default_rng(seed).standard_normal(logits.shape)
    model.zero_grad()
    dx = model.backward(dlogits)
    tlogits = net(torch_x)
    assert_close("logits", logits, N(tlogits), TOL_NET, errors)
    tlogits.backward(torch.from_numpy(dlogits))
    tdx = N(torch_x.grad)
    assert_close("dx", dx, tdx if tdx.shape == dx.shape else tdx.transpose(0, 2, 3, 1), TOL_NET,
                 errors)
    theirs = their_grads()
    assert set(theirs) == set(model.grads)
    for k, g in model.grads.items():
        assert_close(k, g, theirs[k], TOL_NET, errors)
    print(f"\nworst rel_error {max(errors.values()):.2e} ({max(errors, key=errors.get)})")


def set_coords(net, model, key_of):
    """Give the reference our float64 coordinate table (it builds its own in float32, then
    casts: a 1e-8 difference that would hide everything below it), after checking that the
    two agree to float32 round-off (window and pretrained window alike)."""
    bufs = dict(net.named_buffers())
    for name, blk in model.blocks():
        theirs = bufs[key_of(name)]
        assert np.allclose(N(theirs)[0], blk.attn.coords, rtol=0, atol=1e-6), name
        theirs.copy_(torch.from_numpy(blk.attn.coords[None].copy()))


SMALL = dict(img_size=64, embed_dim=8, depths=(2, 2, 2), num_heads=(1, 2, 4), window_size=4)
SHRINK = dict(img_size=128, embed_dim=8, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8),
              window_size=8)


@pytest.mark.parametrize("arch, pretrained", [(SMALL, (0, 0, 0)), (SMALL, (3, 6, 0)),
                                              (SHRINK, (0, 0, 0, 0))],
                         ids=["3-stages", "3-stages-pretrained-windows", "window-shrinks"])
def test_network_vs_timm_at_its_own_size(arch, pretrained, tier):
    """At the model's own size. 3-stages: 64 px, patch 4, window 4: stage 0 16x16 (shifted,
    masked), stage 1 8x8, stage 2 4x4 where the window covers the map (no shift), with and
    without pretrained_window_sizes. window-shrinks: 128 px, window 8: stage 3 is 4x4, so its
    window shrinks to 4 (a 7x7 coordinate table, normalised by 4 - 1)."""
    timm_v2, _ = import_references()
    cfg = dict(arch, num_classes=7, drop_path_rate=0.0)
    model = minswin.create_model("swinv2_t", dtype="float64", pretrained_window_sizes=pretrained,
                                 **cfg)
    model.eval()
    randomise_v2(model)
    net = timm_v2.SwinTransformerV2(**cfg, pretrained_window_sizes=pretrained).double().eval()
    official_to_timm = {timm_to_official(k): k for k in net.state_dict()}
    net.load_state_dict({official_to_timm[k]: torch.from_numpy(v.copy())
                         for k, v in model.state_dict().items()}, strict=True)
    set_coords(net, model, lambda name: official_to_timm[f"{name}.attn.logit_scale"]
               .replace("logit_scale", "relative_coords_table"))
    if arch is SHRINK:
        assert model.layers[3].blocks[1].window_size == 4
        assert model.layers[3].blocks[1].attn.coords.shape == (7, 7, 2)
    S = cfg["img_size"]
    x = np.random.default_rng(3).standard_normal((2 if S <= 64 else 1, S, S, 3))
    tx = T(x.transpose(0, 3, 1, 2))                        # timm takes NCHW
    errors = {}
    compare(model, net, x, tx, lambda: {timm_to_official(k): N(p.grad)
                                        for k, p in net.named_parameters()}, errors)


def official_to_tv(key):
    """minswin/official V2 names -> torchvision's features.* names (q_bias/v_bias: qkv.bias)."""
    if key.startswith("patch_embed.proj."):
        return "features.0.0." + key[len("patch_embed.proj."):]
    if key.startswith("patch_embed.norm."):
        return "features.0.2." + key[len("patch_embed.norm."):]
    parts = key.split(".")
    if parts[0] == "layers":
        i = int(parts[1])
        if parts[2] == "downsample":
            return f"features.{2 * i + 2}." + ".".join(parts[3:])
        rest = ".".join(parts[4:]).replace("mlp.fc1.", "mlp.0.").replace("mlp.fc2.", "mlp.3.")
        return f"features.{2 * i + 1}.{parts[3]}.{rest}"
    return key


def tv_state(model):
    """minswin's state dict in torchvision's names, q_bias and v_bias joined around a zero k."""
    out = {}
    for k, v in model.state_dict().items():
        if k.endswith("attn.v_bias"):
            continue
        if k.endswith("attn.q_bias"):
            v = np.concatenate([v, np.zeros_like(v), model.params[k[:-6] + "v_bias"]])
            k = k[:-6] + "qkv.bias"
        out[official_to_tv(k)] = torch.from_numpy(np.array(v, copy=True))
    return out


def build_tv_pair(seed=0):
    _, tv = import_references()
    model = minswin.create_model("swinv2_t", dtype="float64", img_size=64, embed_dim=8,
                                 depths=(2, 2), num_heads=(2, 4), window_size=4, num_classes=5,
                                 drop_path_rate=0.0, seed=seed)
    model.eval()
    randomise_v2(model, seed)
    net = tv.SwinTransformer(patch_size=[4, 4], embed_dim=8, depths=[2, 2], num_heads=[2, 4],
                             window_size=[4, 4], stochastic_depth_prob=0.0, num_classes=5,
                             block=tv.SwinTransformerBlockV2,
                             downsample_layer=tv.PatchMergingV2).double().eval()
    state = tv_state(model)
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert not unexpected and all(k.endswith(("relative_coords_table",
                                              "relative_position_index")) for k in missing)
    set_coords(net, model, lambda name: official_to_tv(f"{name}.attn.relative_coords_table"))
    return model, net


@pytest.mark.parametrize("hw", [(44, 36), (12, 40)])
def test_network_vs_torchvision_where_it_pads(hw, tier):
    """44x36 -> 11x9 tokens, padded to 12x12 (shift on both axes), stage 1 6x5 padded to 8x8;
    12x40 -> 3x10 tokens padded to 4x12: one window covers the rows, so no row shift."""
    model, net = build_tv_pair()
    x = np.random.default_rng(4).standard_normal((2, *hw, 3))
    tx = T(x.transpose(0, 3, 1, 2))

    def grads():
        g = {}
        named = dict(net.named_parameters())
        for k in model.grads:
            if k.endswith(("q_bias", "v_bias")):
                b = N(named[official_to_tv(k[:-6] + "qkv.bias")].grad)
                C = b.shape[0] // 3
                assert np.all(b[C:2 * C] == 0)             # torchvision's k third: no gradient
                g[k] = b[:C] if k.endswith("q_bias") else b[2 * C:]
            else:
                g[k] = N(named[official_to_tv(k)].grad)
        return g
    errors = {}
    compare(model, net, x, tx, grads, errors)


# ---------------------------------------------------------------------------- V2 checkpoints

def test_torchvision_and_timm_v2_checkpoints_load():
    """torchvision's names, its qkv.bias and its buffers (the float32 coordinate table, the
    flat index) load into minswin and give the same logits; so do timm's names."""
    model, net = build_tv_pair(seed=5)
    x = np.random.default_rng(6).standard_normal((1, 64, 64, 3))
    want = model.forward(x)
    state = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    assert any(k.endswith("relative_coords_table") for k in state)
    for k in state:                                        # the references' float32 tables
        if k.endswith("relative_coords_table"):
            state[k] = state[k].astype(np.float32)
    other = minswin.create_model("swinv2_t", dtype="float64", img_size=64, embed_dim=8,
                                 depths=(2, 2), num_heads=(2, 4), window_size=4, num_classes=5,
                                 seed=99)
    other.load_state_dict(state, strict=True)
    assert np.allclose(other.forward(x), want, rtol=0, atol=1e-12)
    timm_names = {}
    for k, v in model.state_dict().items():
        m = k.split(".")
        if m[0] == "layers" and m[2] == "downsample":
            k = f"layers.{int(m[1]) + 1}." + ".".join(m[2:])
        timm_names[k.replace("head.", "head.fc.")] = v.copy()
    third = minswin.create_model("swinv2_t", dtype="float64", img_size=64, embed_dim=8,
                                 depths=(2, 2), num_heads=(2, 4), window_size=4, num_classes=5,
                                 seed=7)
    third.load_state_dict(timm_names, strict=True)
    assert np.allclose(third.forward(x), want, rtol=0, atol=1e-12)

