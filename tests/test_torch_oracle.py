"""PyTorch as the oracle: every op and the whole network against torch autograd, in float64.

torch is used here only, as a test oracle (micrograd / llm.c style); `minswin` never imports
it. The whole-network reference is `tests/torch_reference.py`, a small Swin written in plain
torch from SPEC.md (no timm, no torchvision), loaded by the official key names.

Expected errors (rel_error = max|a - b| / (max|a| + max|b|)): per op <= 1e-10, whole network
(logits, dx and every parameter gradient) <= 1e-9; in practice both are ~1e-15 .. 1e-13.
The ops are the plain tier's; the whole network runs on both tiers.
"""
import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest

import minswin
from minswin.gradcheck import rel_error
from minswin.ops.attention import window_attention_backward, window_attention_forward
from minswin.ops.droppath import droppath_backward, droppath_forward
from minswin.ops.gelu import gelu_backward, gelu_forward
from minswin.ops.layernorm import layernorm_backward, layernorm_forward
from minswin.ops.linear import linear_backward, linear_forward
from minswin.ops.masks import forward_window_shift
from minswin.ops.mlp import mlp_backward, mlp_forward
from minswin.ops.patch_embed import patch_embed_backward, patch_embed_forward
from minswin.ops.patch_merging import patch_merging_backward, patch_merging_forward
from minswin.ops.relative_bias import relative_bias_backward, relative_bias_forward
from minswin.ops.softmax import softmax_backward, softmax_forward
from minswin.ops.window import (
    from_windows,
    from_windows_backward,
    to_windows_backward,
    to_windows_forward,
)

torch = pytest.importorskip("torch", reason="torch (the test oracle) is not installed")
F = torch.nn.functional

_spec = importlib.util.spec_from_file_location(
    "torch_reference", Path(__file__).with_name("torch_reference.py"))
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)

TOL_OP = 1e-10      # one op against torch autograd, float64
TOL_NET = 1e-9      # the whole network: logits, dx and every parameter gradient


# ---------------------------------------------------------------------------- helpers

def T(a, grad=True):
    """A float64 leaf tensor holding a copy of NumPy array `a` (integers: no grad)."""
    t = torch.from_numpy(np.array(a, copy=True))
    if grad and t.is_floating_point():
        t.requires_grad_(True)
    return t


def N(t):
    return t.detach().numpy()


def torch_vjp(out, dout, inputs):
    """Gradients of sum(out * dout) with respect to `inputs` (a list of leaf tensors)."""
    return torch.autograd.grad(out, inputs, grad_outputs=torch.from_numpy(dout))


def assert_close(name, a, b, tol, errors=None):
    """rel_error(a, b) <= tol, with the number in the message; optionally recorded."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, f"{name}: shape {a.shape} vs {b.shape}"
    err = rel_error(a, b)
    if errors is not None:
        errors[name] = err
    assert err <= tol, f"{name}: rel_error {err:.3e} > {tol:.0e}"
    return err


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# ---------------------------------------------------------------------------- elementwise ops

@pytest.mark.parametrize("has_bias", [True, False])
def test_linear(rng, has_bias):
    x, w = rng.standard_normal((2, 5, 7)), rng.standard_normal((4, 7))
    b = rng.standard_normal(4) if has_bias else None
    out, cache = linear_forward(x, w, b)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = linear_backward(dout, cache)
    tx, tw = T(x), T(w)
    tb = T(b) if has_bias else None
    tout = F.linear(tx, tw, tb)
    assert_close("out", out, N(tout), TOL_OP)
    grads = torch_vjp(tout, dout, [tx, tw] + ([tb] if has_bias else []))
    assert_close("dx", dx, N(grads[0]), TOL_OP)
    assert_close("dw", dw, N(grads[1]), TOL_OP)
    if has_bias:
        assert_close("db", db, N(grads[2]), TOL_OP)
    else:
        assert db is None


def test_layernorm(rng):
    C = 12
    x = rng.standard_normal((3, 4, C)) * 3 + 1
    g, b = 1 + 0.5 * rng.standard_normal(C), 0.5 * rng.standard_normal(C)
    out, cache = layernorm_forward(x, g, b)
    dout = rng.standard_normal(out.shape)
    dx, dg, db = layernorm_backward(dout, cache)
    tx, tg, tb = T(x), T(g), T(b)
    tout = F.layer_norm(tx, (C,), tg, tb, eps=1e-5)
    assert_close("out", out, N(tout), TOL_OP)
    for name, mine, theirs in zip(("dx", "dgamma", "dbeta"), (dx, dg, db),
                                  torch_vjp(tout, dout, [tx, tg, tb])):
        assert_close(name, mine, N(theirs), TOL_OP)


def test_layernorm_eps_matters(rng):
    """Small variance, so that eps 1e-5 inside the sqrt is visible: guards the constant."""
    C = 8
    x = 1e-3 * rng.standard_normal((4, C))
    g, b = np.ones(C), np.zeros(C)
    out, _ = layernorm_forward(x, g, b)
    assert_close("out", out, N(F.layer_norm(T(x), (C,), T(g), T(b), eps=1e-5)), TOL_OP)
    assert rel_error(out, N(F.layer_norm(T(x), (C,), T(g), T(b), eps=1e-6))) > 1e-3


def test_gelu_exact_erf(rng):
    x = rng.standard_normal((5, 33)) * 3
    out, cache = gelu_forward(x)
    dout = rng.standard_normal(out.shape)
    dx = gelu_backward(dout, cache)
    tx = T(x)
    tout = F.gelu(tx, approximate="none")
    assert_close("out", out, N(tout), TOL_OP)
    assert_close("dx", dx, N(torch_vjp(tout, dout, [tx])[0]), TOL_OP)
    # the tanh approximation is measurably different: the comparison can tell them apart
    assert rel_error(out, N(F.gelu(tx, approximate="tanh"))) > 1e-6


def test_softmax(rng):
    s = rng.standard_normal((2, 3, 6, 6)) * 4
    s[..., 1] -= 100.0                                     # a masked-like column
    out, cache = softmax_forward(s)
    dout = rng.standard_normal(out.shape)
    ds = softmax_backward(dout, cache)
    ts = T(s)
    tout = torch.softmax(ts, dim=-1)
    assert_close("out", out, N(tout), TOL_OP)
    assert_close("ds", ds, N(torch_vjp(tout, dout, [ts])[0]), TOL_OP)


def test_mlp(rng):
    C, Hd = 6, 24
    x = rng.standard_normal((2, 3, C))
    w1, b1 = rng.standard_normal((Hd, C)) / C ** 0.5, rng.standard_normal(Hd)
    w2, b2 = rng.standard_normal((C, Hd)) / Hd ** 0.5, rng.standard_normal(C)
    out, cache = mlp_forward(x, w1, b1, w2, b2)
    dout = rng.standard_normal(out.shape)
    mine = mlp_backward(dout, cache)
    ts = [T(a) for a in (x, w1, b1, w2, b2)]
    tout = F.linear(F.gelu(F.linear(ts[0], ts[1], ts[2])), ts[3], ts[4])
    assert_close("out", out, N(tout), TOL_OP)
    for name, a, t in zip(("dx", "dw1", "db1", "dw2", "db2"), mine, torch_vjp(tout, dout, ts)):
        assert_close(name, a, N(t), TOL_OP)


@pytest.mark.parametrize("training", [False, True])
def test_droppath(rng, training):
    """Eval is the identity; training is x * keep[b] / (1 - p) with the same host draw."""
    x, p = rng.standard_normal((8, 3, 3, 4)), 0.3
    out, cache = droppath_forward(x, p, training, np.random.default_rng(7))
    dout = rng.standard_normal(out.shape)
    dx = droppath_backward(dout, cache)
    keep = np.random.default_rng(7).random(8) >= p if training else np.ones(8, bool)
    scale = T(keep / (1 - p) if training else np.ones(8), grad=False).view(-1, 1, 1, 1)
    tx = T(x)
    tout = tx * scale
    assert_close("out", out, N(tout), TOL_OP)
    assert_close("dx", dx, N(torch_vjp(tout, dout, [tx])[0]), TOL_OP)
    if not training:
        assert np.array_equal(out, x) and np.array_equal(dx, dout)


# ---------------------------------------------------------------------------- patch embed / merge

@pytest.mark.parametrize("hw", [(8, 12), (10, 7)], ids=["divisible", "padded"])
def test_patch_embed_vs_conv2d(rng, hw):
    """A (C, 3, 4, 4) conv on NCHW; a size not divisible by 4 is zero-padded bottom/right."""
    H, W = hw
    C, p = 5, 4
    x = rng.standard_normal((2, H, W, 3))
    w, b = rng.standard_normal((C, 3, p, p)), rng.standard_normal(C)
    out, cache = patch_embed_forward(x, w, b, p)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = patch_embed_backward(dout, cache)
    tx, tw, tb = T(x), T(w), T(b)
    xn = tx.permute(0, 3, 1, 2)                            # (B, 3, H, W)
    xn = F.pad(xn, (0, (-W) % p, 0, (-H) % p))             # right, bottom
    tout = F.conv2d(xn, tw, tb, stride=p).permute(0, 2, 3, 1)   # (B, h, w, C)
    assert out.shape == (2, -(-H // p), -(-W // p), C)
    assert_close("out", out, N(tout), TOL_OP)
    for name, a, t in zip(("dx", "dweight", "dbias"), (dx, dw, db),
                          torch_vjp(tout, dout, [tx, tw, tb])):
        assert_close(name, a, N(t), TOL_OP)


def _torch_merge(x, g, b, w):
    """Official PatchMerging (channels-last), with the bottom/right pad for odd maps."""
    H, W = x.shape[1:3]
    x = F.pad(x, (0, 0, 0, W % 2, 0, H % 2))
    x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
    return F.linear(F.layer_norm(x, (x.shape[-1],), g, b, eps=1e-5), w)


@pytest.mark.parametrize("hw", [(6, 4), (5, 7)], ids=["even", "odd"])
def test_patch_merging(rng, hw):
    H, W = hw
    C = 3
    x = rng.standard_normal((2, H, W, C))
    g, b = 1 + 0.5 * rng.standard_normal(4 * C), 0.5 * rng.standard_normal(4 * C)
    w = rng.standard_normal((2 * C, 4 * C))
    out, cache = patch_merging_forward(x, g, b, w)
    dout = rng.standard_normal(out.shape)
    mine = patch_merging_backward(dout, cache)
    ts = [T(a) for a in (x, g, b, w)]
    tout = _torch_merge(*ts)
    assert_close("out", out, N(tout), TOL_OP)
    for name, a, t in zip(("dx", "dnorm_w", "dnorm_b", "dreduction"), mine,
                          torch_vjp(tout, dout, ts)):
        assert_close(name, a, N(t), TOL_OP)
    # the order matters: TL, TR, BL, BR (row-major) would not match
    xt = F.pad(ts[0], (0, 0, 0, W % 2, 0, H % 2))
    wrong = torch.cat([xt[:, 0::2, 0::2], xt[:, 0::2, 1::2], xt[:, 1::2, 0::2],
                       xt[:, 1::2, 1::2]], -1)
    wrong = F.linear(F.layer_norm(wrong, (4 * C,), ts[1], ts[2], eps=1e-5), ts[3])
    assert rel_error(out, N(wrong)) > 1e-3


# ---------------------------------------------------------------------------- constants, bias

@pytest.mark.parametrize("M", [1, 2, 3, 4, 7])
def test_relative_position_index(M):
    assert np.array_equal(minswin.relative_position_index(M), ref.relative_position_index(M))


@pytest.mark.parametrize("M, nH", [(2, 3), (4, 2), (7, 3)])
def test_relative_bias_gather_scatter(rng, M, nH):
    index = minswin.relative_position_index(M)
    table = rng.standard_normal(((2 * M - 1) ** 2, nH))
    bias, cache = relative_bias_forward(table, index)
    dbias = rng.standard_normal(bias.shape)
    dtable = relative_bias_backward(dbias, cache)
    tt = T(table)
    N_ = M * M
    tbias = tt[torch.from_numpy(index).view(-1)].view(N_, N_, -1).permute(2, 0, 1)
    assert_close("bias", bias, N(tbias), TOL_OP)
    # a scatter-add: rows read (M-|dr|)(M-|dc|) times must accumulate every read
    assert_close("dtable", dtable, N(torch_vjp(tbias, dbias, [tt])[0]), TOL_OP)


# ---------------------------------------------------------------------------- attention

def _torch_attention(x, wq, bq, wp, bp, bias, mask, nH):
    """The official WindowAttention.forward, functional."""
    B_, Nt, C = x.shape
    qkv = F.linear(x, wq, bq).reshape(B_, Nt, 3, nH, C // nH).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0] * (C // nH) ** -0.5, qkv[1], qkv[2]
    attn = q @ k.transpose(-2, -1) + bias.unsqueeze(0)
    if mask is not None:
        nW = mask.shape[0]
        attn = (attn.view(B_ // nW, nW, nH, Nt, Nt) + mask.unsqueeze(1).unsqueeze(0))
        attn = attn.view(-1, nH, Nt, Nt)
    attn = attn.softmax(-1)
    return F.linear((attn @ v).transpose(1, 2).reshape(B_, Nt, C), wp, bp)


@pytest.mark.parametrize("masked", [False, True], ids=["W-MSA", "SW-MSA"])
def test_window_attention(rng, masked):
    B, M, C, nH = 2, 4, 12, 3
    Hp, Wp = 8, 12
    Nt = M * M
    mask = minswin.attention_mask(Hp, Wp, M, 2) if masked else None
    nW = (Hp // M) * (Wp // M)
    x = rng.standard_normal((B * nW, Nt, C))
    wq, bq = rng.standard_normal((3 * C, C)) / C ** 0.5, 0.5 * rng.standard_normal(3 * C)
    wp, bp = rng.standard_normal((C, C)) / C ** 0.5, 0.5 * rng.standard_normal(C)
    bias = rng.standard_normal((nH, Nt, Nt))
    out, cache = window_attention_forward(x, wq, bq, wp, bp, bias, mask, num_heads=nH)
    dout = rng.standard_normal(out.shape)
    mine = window_attention_backward(dout, cache)
    ts = [T(a) for a in (x, wq, bq, wp, bp, bias)]
    tmask = T(mask, grad=False) if masked else None
    tout = _torch_attention(*ts, tmask, nH)
    assert_close("out", out, N(tout), TOL_OP)
    names = ("dx", "dqkv_w", "dqkv_b", "dproj_w", "dproj_b", "dbias")
    for name, a, t in zip(names, mine, torch_vjp(tout, dout, ts)):
        assert_close(name, a, N(t), TOL_OP)
    if masked:   # the mask really is in play: without it the output differs
        assert rel_error(out, N(_torch_attention(*ts, None, nH))) > 1e-3


# ---------------------------------------------------------------------------- window movement

@pytest.mark.parametrize("H, W, M, S", [
    (8, 8, 4, (0, 0)), (8, 8, 4, (2, 2)), (7, 10, 4, (2, 2)), (5, 9, 3, (1, 1)),
    (3, 10, 4, (0, 2))])
def test_window_movement(rng, H, W, M, S):
    """to_windows = pad bottom/right, roll(-S), partition; from_windows undoes it (torch)."""
    B, C = 2, 3
    x = rng.standard_normal((B, H, W, C))
    tokens, cache = to_windows_forward(x, M, S)
    Hp, Wp = H + (-H) % M, W + (-W) % M
    tx = T(x)
    t = F.pad(tx, (0, 0, 0, Wp - W, 0, Hp - H))
    t = torch.roll(t, shifts=(-S[0], -S[1]), dims=(1, 2))
    t = t.reshape(B, Hp // M, M, Wp // M, M, C).permute(0, 1, 3, 2, 4, 5)
    ttok = t.reshape(-1, M * M, C)
    assert_close("tokens", tokens, N(ttok), TOL_OP)
    dtok = rng.standard_normal(tokens.shape)
    assert_close("to_windows dx", to_windows_backward(dtok, cache),
                 N(torch_vjp(ttok, dtok, [tx])[0]), TOL_OP)
    # the way back: partition^-1, roll(+S), crop
    y = rng.standard_normal(tokens.shape)
    ty = T(y)
    u = ty.reshape(B, Hp // M, Wp // M, M, M, C).permute(0, 1, 3, 2, 4, 5).reshape(B, Hp, Wp, C)
    tback = torch.roll(u, shifts=S, dims=(1, 2))[:, :H, :W]
    back = from_windows(y, cache)
    assert_close("from_windows", back, N(tback), TOL_OP)
    dback = rng.standard_normal(back.shape)
    assert_close("from_windows dy", from_windows_backward(dback, cache),
                 N(torch_vjp(tback, dback, [ty])[0]), TOL_OP)
    assert np.array_equal(from_windows(tokens, cache), x)   # a round trip


@pytest.mark.parametrize("H, W, M, s, expect", [
    (8, 8, 4, 2, ((8, 8), (2, 2))), (3, 10, 4, 2, ((4, 12), (0, 2))),
    (11, 4, 4, 2, ((12, 4), (2, 0))), (4, 4, 4, 2, ((4, 4), (0, 0)))])
def test_forward_window_shift_rule(H, W, M, s, expect):
    assert forward_window_shift(H, W, M, s) == expect


# ---------------------------------------------------------------------------- whole network

def randomise(model, seed=0):
    """Make every term count: weights ~ N(0, 1/fan_in), LN affines 1 + N(0, .5^2), biases and
    bias tables N(0, .5^2). Writes in place through `model.params`."""
    r = np.random.default_rng(seed)
    for k, p in model.params.items():
        if k.endswith("relative_position_bias_table") or k.endswith(".bias"):
            v = 0.5 * r.standard_normal(p.shape)
        elif p.ndim == 1:                                  # LayerNorm weights
            v = 1.0 + 0.5 * r.standard_normal(p.shape)
        else:                                              # Linear (Cout, Cin), conv (C, 3, p, p)
            v = r.standard_normal(p.shape) / np.sqrt(np.prod(p.shape[1:]))
        p[...] = v


def build_pair(name, seed=0, **cfg):
    """(minswin model, torch reference) with the same randomised float64 weights, by key."""
    model = minswin.create_model(name, dtype="float64", seed=seed, **cfg)
    model.eval()
    randomise(model, seed)
    net = ref.from_config(model.config).double().eval()
    state = {k: torch.from_numpy(v.copy()) for k, v in model.state_dict().items()}
    net.load_state_dict(state, strict=True)                # same keys, both ways
    for (k, p), (k2, q) in zip(sorted(model.params.items()), sorted(net.state_dict().items())):
        assert k == k2 and p.shape == tuple(q.shape)
    return model, net


def compare_network(model, net, x, seed=0):
    """Logits, dx and every parameter gradient of minswin vs torch autograd: {name: error}."""
    errors = {}
    logits = model.forward(x)
    dlogits = np.random.default_rng(seed + 1).standard_normal(logits.shape)
    model.zero_grad()
    dx = model.backward(dlogits)
    tx = T(x)
    net.zero_grad()
    tlogits = net(tx)
    assert_close("logits", logits, N(tlogits), TOL_NET, errors)
    tlogits.backward(torch.from_numpy(dlogits))
    assert_close("dx", dx, N(tx.grad), TOL_NET, errors)
    tgrads = {k: p.grad for k, p in net.named_parameters()}
    assert set(tgrads) == set(model.grads)
    for k, g in model.grads.items():
        assert tgrads[k] is not None, f"{k}: no torch gradient"
        assert_close(k, g, N(tgrads[k]), TOL_NET, errors)
    return errors


@pytest.fixture(params=["plain", "fast"])
def tier(request):
    """The whole network runs on both tiers (minswin.use_fast); the ops above are the plain
    tier's (tests/test_twins.py holds the fast tier to them)."""
    previous = minswin.use_fast(request.param == "fast")
    yield request.param
    minswin.use_fast(previous)


def _report(errors):
    worst = max(errors, key=errors.get)
    print(f"\nworst rel_error {errors[worst]:.2e} ({worst}); logits {errors['logits']:.2e}, "
          f"dx {errors['dx']:.2e}")


def test_micro_network_at_img_size(tier):
    """swin_micro at its own 32x32: official semantics (stage 1 is 4x4 = one window, no shift)."""
    model, net = build_pair("swin_micro", num_classes=10)
    assert [b.shift_size for _, b in model.blocks()] == [0, 2, 0, 0]
    x = np.random.default_rng(3).standard_normal((2, 32, 32, 3))
    _report(compare_network(model, net, x))


@pytest.mark.parametrize("hw", [(44, 36), (12, 40)])
def test_micro_network_padded_sizes(hw, tier):
    """Sizes that pad inside blocks: 44x36 -> 11x9 tokens padded to 12x12 (shift on both
    axes); 12x40 -> 3x10 tokens padded to 4x12, shift 0 on the axis one window covers."""
    model, net = build_pair("swin_micro", num_classes=10)
    x = np.random.default_rng(4).standard_normal((2, *hw, 3))
    _report(compare_network(model, net, x))


def test_micro_network_larger_than_img_size(tier):
    """64x48 on a 32-px model: stage 2 sees 8x6 tokens (padded to 8x8), so its odd block shifts
    by 2 (torchvision), although at the model's own size (4x4) the shift is off (official)."""
    model, net = build_pair("swin_micro", num_classes=10)
    blk = model.layers[1].blocks[1]
    assert blk.shift_size == 0 and blk.window_shift_for(8, 6) == ((8, 8), (2, 2))
    x = np.random.default_rng(6).standard_normal((2, 64, 48, 3))
    _report(compare_network(model, net, x))


def test_three_stage_network_with_shrunk_window(tier):
    """depths (2, 2, 2) at 48 px, M=4: stage 0 12x12 (9 mask regions), stage 1 6x6 padded to
    8x8 with a shift, stage 2 3x3 where the window shrinks to 3 (a 25-row table), no shift."""
    model, net = build_pair("swin_micro", num_classes=7, img_size=48, depths=(2, 2, 2),
                            num_heads=(2, 4, 8), embed_dim=16)
    blocks = dict(model.blocks())
    assert blocks["layers.2.blocks.1"].window_size == 3
    assert blocks["layers.2.blocks.1"].shift_size == 0
    assert model.params["layers.2.blocks.1.attn.relative_position_bias_table"].shape == (25, 8)
    x = np.random.default_rng(5).standard_normal((2, 48, 48, 3))
    _report(compare_network(model, net, x))


@pytest.mark.slow
def test_swin_t_forward_224(tier):
    """Swin-T at 224 in float64, batch 1, forward only (stage 4 is one 7x7 window)."""
    t0 = time.perf_counter()
    model, net = build_pair("swin_t", num_classes=1000)
    x = np.random.default_rng(6).standard_normal((1, 224, 224, 3))
    logits = model.forward(x)
    with torch.no_grad():
        tlogits = net(T(x, grad=False))
    err = assert_close("logits", logits, N(tlogits), TOL_NET)
    print(f"\nSwin-T logits rel_error {err:.2e} in {time.perf_counter() - t0:.1f} s")
