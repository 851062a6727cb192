"""Optimisers, schedule and clipping: hand-computed steps and a few steps of torch's own."""
import math

import numpy as np
import pytest

from minswin.optim import (
    SGD,
    AdamW,
    clip_grad_norm,
    cosine_lr,
    create_optimizer,
    global_grad_norm,
    uses_weight_decay,
)

# names shaped like a Swin state dict, to exercise the weight-decay rule
SHAPES = {
    "layers.0.blocks.0.attn.qkv.weight": (6, 4),
    "layers.0.blocks.0.attn.qkv.bias": (6,),
    "layers.0.blocks.0.norm1.weight": (4,),
    "layers.0.blocks.0.attn.relative_position_bias_table": (9, 2),
    "absolute_pos_embed": (1, 3, 4),
    "head.weight": (3, 4),
}
DECAYED = {"layers.0.blocks.0.attn.qkv.weight", "head.weight"}


def _params(seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s) for k, s in SHAPES.items()}


def _grads(step, seed=100):
    rng = np.random.default_rng(seed + step)
    return {k: rng.standard_normal(s) for k, s in SHAPES.items()}


def test_weight_decay_rule_follows_official_recipe():
    params = _params()
    got = {k for k, p in params.items() if uses_weight_decay(k, p)}
    assert got == DECAYED


# ---------------------------------------------------------------------------- by hand

def test_sgd_by_hand():
    p = {"w.weight": np.array([[1.0, -2.0]])}
    opt = SGD(p, lr=0.1, momentum=0.9, weight_decay=0.5)
    g1 = {"w.weight": np.array([[0.2, 0.4]])}
    opt.step(g1)
    # g' = g + wd p = (0.7, -0.6); b = g'; p = p - lr b
    np.testing.assert_allclose(p["w.weight"], [[0.93, -1.94]], rtol=0, atol=1e-15)
    opt.step(g1)
    # g' = (0.2 + 0.465, 0.4 - 0.97) = (0.665, -0.57); b = 0.9 (0.7, -0.6) + g'
    b = np.array([0.9 * 0.7 + 0.665, 0.9 * -0.6 - 0.57])
    np.testing.assert_allclose(p["w.weight"][0], np.array([0.93, -1.94]) - 0.1 * b, atol=1e-15)


def test_adamw_first_step_by_hand():
    # after one step m_hat = g and v_hat = g^2, so the step is lr * g / (|g| + eps) ~ lr sign(g)
    p = {"w.weight": np.array([[1.0, -2.0]]), "w.bias": np.array([3.0])}
    opt = AdamW(p, lr=0.01, weight_decay=0.1, eps=1e-8)
    opt.step({"w.weight": np.array([[0.5, -4.0]]), "w.bias": np.array([2.0])})
    decay = 1.0 - 0.01 * 0.1
    expect_w = np.array([1.0 * decay - 0.01 * 0.5 / (0.5 + 1e-8),
                         -2.0 * decay + 0.01 * 4.0 / (4.0 + 1e-8)])
    np.testing.assert_allclose(p["w.weight"][0], expect_w, rtol=0, atol=1e-15)
    # biases are not decayed
    np.testing.assert_allclose(p["w.bias"], [3.0 - 0.01 * 2.0 / (2.0 + 1e-8)], atol=1e-15)


def test_adamw_second_step_by_hand():
    p = {"w.weight": np.array([[1.0]])}
    opt = AdamW(p, lr=0.1, betas=(0.5, 0.75), eps=0.0, weight_decay=0.0)
    opt.step({"w.weight": np.array([[2.0]])})
    # m1 = 0.5 * 2 = 1, v1 = 0.25 * 4 = 1; m_hat = 1 / 0.5 = 2, v_hat = 1 / 0.25 = 4
    np.testing.assert_allclose(p["w.weight"], [[1.0 - 0.1 * 2 / 2]], atol=1e-15)
    opt.step({"w.weight": np.array([[1.0]])})
    # m2 = 0.5 + 0.5 = 1, v2 = 0.75 + 0.25 = 1; m_hat = 1 / 0.75, v_hat = 1 / 0.4375
    step = 0.1 * (1 / 0.75) / math.sqrt(1 / 0.4375)
    np.testing.assert_allclose(p["w.weight"], [[0.9 - step]], rtol=0, atol=1e-15)


def test_params_updated_in_place_and_dtype_kept():
    w = np.ones((2, 3), dtype=np.float32)
    p = {"a.weight": w}
    for opt in (AdamW(p, lr=0.1), SGD(p, lr=0.1, momentum=0.9, nesterov=True)):
        opt.step({"a.weight": np.full((2, 3), 0.5, dtype=np.float32)})
        assert p["a.weight"] is w and w.dtype == np.float32
        assert all(a.dtype == np.float32 for s in opt.state.values() for a in s.values())


# ---------------------------------------------------------------------------- torch

def _torch_run(torch_opt_cls, kwargs, steps, decay_names):
    torch = pytest.importorskip("torch")
    params = {k: torch.tensor(v, requires_grad=True) for k, v in _params().items()}
    groups = [
        {"params": [p for k, p in params.items() if k in decay_names]},
        {"params": [p for k, p in params.items() if k not in decay_names],
         "weight_decay": 0.0},
    ]
    opt = torch_opt_cls(groups, **kwargs)
    for s in range(steps):
        for k, p in params.items():
            p.grad = torch.tensor(_grads(s)[k])
        opt.step()
    return {k: p.detach().numpy() for k, p in params.items()}


def _ours(opt_cls, kwargs, steps):
    params = _params()
    opt = opt_cls(params, **kwargs)
    for s in range(steps):
        opt.step(_grads(s))
    return params


@pytest.mark.parametrize("nesterov, wd", [(False, 0.0), (True, 0.05), (False, 0.05)])
def test_sgd_matches_torch(nesterov, wd):
    torch = pytest.importorskip("torch")
    kw = dict(lr=0.05, momentum=0.9, weight_decay=wd, nesterov=nesterov)
    ref = _torch_run(torch.optim.SGD, kw, 5, DECAYED)
    got = _ours(SGD, kw, 5)
    for k in SHAPES:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-13, atol=1e-14, err_msg=k)


@pytest.mark.parametrize("wd", [0.0, 0.05])
def test_adamw_matches_torch(wd):
    torch = pytest.importorskip("torch")
    kw = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=wd)
    ref = _torch_run(torch.optim.AdamW, kw, 6, DECAYED)
    got = _ours(AdamW, kw, 6)
    for k in SHAPES:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-12, atol=1e-14, err_msg=k)


def test_adamw_with_changing_lr_matches_torch():
    # the schedule sets `lr` before every step; torch reads group["lr"] the same way
    torch = pytest.importorskip("torch")
    lrs = [cosine_lr(s, base_lr=1e-2, total_steps=6, warmup_steps=2) for s in range(6)]
    tparams = {k: torch.tensor(v, requires_grad=True) for k, v in _params().items()}
    topt = torch.optim.AdamW(list(tparams.values()), lr=1.0, weight_decay=0.05)
    params = _params()
    opt = AdamW(params, lr=1.0, weight_decay=0.05)
    opt.decay = {k: True for k in params}                     # torch decays every param here
    for s, lr in enumerate(lrs):
        for k, p in tparams.items():
            p.grad = torch.tensor(_grads(s)[k])
        topt.param_groups[0]["lr"] = lr
        topt.step()
        opt.lr = lr
        opt.step(_grads(s))
    for k in SHAPES:
        np.testing.assert_allclose(params[k], tparams[k].detach().numpy(), rtol=1e-12,
                                   atol=1e-14, err_msg=k)


def test_clip_matches_torch():
    torch = pytest.importorskip("torch")
    for max_norm in (0.5, 1e6):
        grads = _grads(0)
        tg = [torch.tensor(g) for g in grads.values()]
        tp = [torch.zeros_like(g, requires_grad=True) for g in tg]
        for p, g in zip(tp, tg):
            p.grad = g.clone()
        ref_norm = torch.nn.utils.clip_grad_norm_(tp, max_norm)
        norm = clip_grad_norm(grads, max_norm)
        assert abs(float(norm) - ref_norm.item()) < 1e-12
        for g, p in zip(grads.values(), tp):
            np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-13, atol=1e-15)


def test_clip_by_hand():
    grads = {"a": np.array([3.0]), "b": np.array([[4.0]])}    # norm 5
    norm = clip_grad_norm(grads, 1.0, eps=0.0)
    assert float(norm) == 5.0
    np.testing.assert_allclose(grads["a"], [0.6])
    np.testing.assert_allclose(grads["b"], [[0.8]])
    assert abs(float(global_grad_norm(grads)) - 1.0) < 1e-15
    grads32 = {"a": np.array([0.3], dtype=np.float32)}
    clip_grad_norm(grads32, 1.0)                              # below the limit: unchanged
    assert grads32["a"].dtype == np.float32 and grads32["a"][0] == np.float32(0.3)


# ---------------------------------------------------------------------------- schedule

def test_cosine_schedule_by_hand():
    kw = dict(base_lr=1.0, total_steps=10, warmup_steps=2, warmup_lr=0.0, min_lr=0.1)
    lrs = [cosine_lr(s, **kw) for s in range(10)]
    assert lrs[0] == 0.0 and lrs[1] == 0.5                    # linear warm-up
    assert lrs[2] == 1.0                                       # cosine starts at base_lr
    assert abs(lrs[6] - (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 4 / 8)))) < 1e-15
    assert abs(lrs[6] - 0.55) < 1e-15                          # half-way: the mean
    assert all(a > b for a, b in zip(lrs[2:], lrs[3:]))        # decreasing after warm-up
    assert cosine_lr(10, **kw) == pytest.approx(0.1)           # the end: min_lr
    assert cosine_lr(0, base_lr=0.3, total_steps=5) == 0.3    # no warm-up


def test_cosine_matches_torch_cosine_annealing():
    torch = pytest.importorskip("torch")
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=7, eta_min=0.01)
    for s in range(8):
        ours = cosine_lr(s + 3, base_lr=0.2, total_steps=10, warmup_steps=3, min_lr=0.01)
        assert abs(ours - opt.param_groups[0]["lr"]) < 1e-12, s
        opt.step()
        sched.step()


# ---------------------------------------------------------------------------- state

@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_state_dict_round_trip_continues_exactly(name):
    kw = dict(lr=0.01, weight_decay=0.05)
    a = _params()
    opt_a = create_optimizer(name, a, **kw)
    for s in range(3):
        opt_a.step(_grads(s))
    saved_params = {k: v.copy() for k, v in a.items()}
    state = {k: v.copy() for k, v in opt_a.state_dict().items()}
    assert state["optimizer.step"].tolist() == [3]
    for s in range(3, 5):
        opt_a.step(_grads(s))
    opt_b = create_optimizer(name, saved_params, **kw)
    opt_b.load_state_dict(state)
    for s in range(3, 5):
        opt_b.step(_grads(s))
    for k in SHAPES:
        assert np.array_equal(a[k], saved_params[k]), k


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="optimizer: expected one of"):
        create_optimizer("adam", _params())
    with pytest.raises(ValueError, match="lr"):
        AdamW(_params(), lr=-1.0)
    with pytest.raises(ValueError, match=r"betas\[1\]"):
        AdamW(_params(), betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="momentum"):
        SGD(_params(), momentum=1.5)
    with pytest.raises(KeyError, match="grads: expected the same keys"):
        AdamW(_params()).step({"head.weight": np.zeros((3, 4))})
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm(_grads(0), 0.0)
    with pytest.raises(ValueError, match="warmup_steps"):
        cosine_lr(0, base_lr=1.0, total_steps=5, warmup_steps=6)
