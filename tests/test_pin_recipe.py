"""The training recipe, held to the official Swin recipe and to reference libraries.

* which parameters decay: the official `set_weight_decay` rule (1-d, ".bias", the skip
  keywords; Swin V2 adds cpb_mlp and logit_scale), on real v1 and V2 models, and AdamW on
  a tiny V2 model step by step against torch.optim.AdamW with the official two groups;
* the learning rate: warm-up then cosine, against timm's CosineLRScheduler configured as the
  official `build_scheduler` (warmup_prefix, steps not epochs);
* label smoothing and gradient clipping inside `train_step`, by what they do to the loss and
  to the weights;
* DropPath: the rate of each block (linspace over all blocks, v1 and V2), V2's DropPath
  applied after the post-norm (forward read back from the block's own parts), and no random
  number drawn at rate 0 or in eval mode.
"""
import copy

import numpy as np
import pytest
from test_pin_dispatch import standin_arrays  # noqa: F401  (a fixture)

from minswin.backend import random_uniform
from minswin.loss import cross_entropy_forward
from minswin.model import create_model
from minswin.ops.droppath import droppath_forward
from minswin.optim import SGD, AdamW
from minswin.training import TrainConfig, lr_at, train_step

# the official code (config.py, optimizer.py, swin_transformer_v2.py), written out here
OFFICIAL_SKIP = {"absolute_pos_embed"}
OFFICIAL_SKIP_KEYWORDS_V1 = {"relative_position_bias_table"}
OFFICIAL_SKIP_KEYWORDS_V2 = {"relative_position_bias_table", "cpb_mlp", "logit_scale"}


def official_no_decay(name, shape, keywords):
    return (len(shape) == 1 or name.endswith(".bias") or name in OFFICIAL_SKIP
            or any(k in name for k in keywords))


def tiny(name, **kw):
    return create_model(name, num_classes=5, dtype="float64", **kw)


# ---------------------------------------------------------------------------- weight decay

@pytest.mark.parametrize("name,keywords", [("swin_micro", OFFICIAL_SKIP_KEYWORDS_V1),
                                           ("swinv2_digits", OFFICIAL_SKIP_KEYWORDS_V2)])
def test_the_decayed_parameters_are_the_official_ones(name, keywords):
    model = tiny(name)
    opt = AdamW(model.params, lr=1e-3, weight_decay=0.05)
    want = {k: not official_no_decay(k, p.shape, keywords) for k, p in model.params.items()}
    assert opt.decay == want
    if name.startswith("swinv2"):
        # the V2 keywords matter: these parameters are not 1-d and not biases
        kw_only = [k for k, p in model.params.items()
                   if ("cpb_mlp" in k or "logit_scale" in k) and p.ndim > 1
                   and not k.endswith(".bias")]
        assert kw_only and not any(opt.decay[k] for k in kw_only)


def test_adamw_on_a_tiny_v2_model_matches_torch_with_the_official_groups():
    torch = pytest.importorskip("torch")
    model = tiny("swinv2_digits", embed_dim=8, depths=(1, 1), num_heads=(1, 2))
    params = {k: v.copy() for k, v in model.params.items()}
    names = list(params)
    tp = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    groups = [
        {"params": [tp[k] for k in names
                    if not official_no_decay(k, params[k].shape, OFFICIAL_SKIP_KEYWORDS_V2)]},
        {"params": [tp[k] for k in names
                    if official_no_decay(k, params[k].shape, OFFICIAL_SKIP_KEYWORDS_V2)],
         "weight_decay": 0.0}]
    ref = torch.optim.AdamW(groups, lr=0.05, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.3)
    ours = AdamW(params, lr=0.05, weight_decay=0.3)
    rng = np.random.default_rng(0)
    for _ in range(3):
        grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        for k in names:
            tp[k].grad = torch.tensor(grads[k])
        ref.step()
        ours.step(grads)
    for k in names:
        np.testing.assert_allclose(params[k], tp[k].detach().numpy(), rtol=1e-12, atol=1e-14,
                                   err_msg=k)


def test_the_recipe_defaults_are_the_official_ones():
    """configs/swin/*.yaml and config.py: AdamW, eps 1e-8, betas (0.9, 0.999), weight decay
    0.05, label smoothing 0.1, gradient clipping at norm 5."""
    cfg = TrainConfig()
    assert (cfg.optimizer, cfg.weight_decay, cfg.label_smoothing, cfg.clip_grad) == \
        ("adamw", 0.05, 0.1, 5.0)
    opt = AdamW({"w": np.zeros((2, 2))})
    assert (opt.beta1, opt.beta2, opt.eps) == (0.9, 0.999, 1e-8)


# ---------------------------------------------------------------------------- schedule

@pytest.mark.parametrize("epochs,warmup,spe", [(6, 2.0, 5), (4, 0.5, 7), (3, 0.0, 4)])
def test_warmup_and_cosine_match_timm_as_the_official_scheduler(epochs, warmup, spe):
    torch = pytest.importorskip("torch")
    from test_folders import oracle
    oracle("timm")
    from timm.scheduler import CosineLRScheduler

    from minswin.training import MAX_WARMUP_FRACTION, WARMUP_START
    cfg = TrainConfig(epochs=epochs, warmup_epochs=warmup, lr=3e-3, min_lr=1e-5)
    # the official warm-up starts at WARMUP_LR / BASE_LR = 5e-7 / 5e-4 of the peak; minswin
    # also caps it at a fifth of the run (so `--epochs 1` reaches --lr): (6, 2.0, 5) is capped
    assert WARMUP_START == 5e-7 / 5e-4 and MAX_WARMUP_FRACTION == 0.2
    total = epochs * spe
    w = min(int(round(warmup * spe)), int(MAX_WARMUP_FRACTION * total))
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
    sched = CosineLRScheduler(opt, t_initial=total - w, lr_min=cfg.min_lr,
                              warmup_lr_init=WARMUP_START * cfg.lr,
                              warmup_t=w, cycle_limit=1, t_in_epochs=False,
                              warmup_prefix=True)
    for step in range(total):
        sched.step_update(step)
        assert lr_at(cfg, step, spe) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12,
                                                      abs=1e-15), step


# ---------------------------------------------------------------------------- one step

def _batch(model, n=4, seed=0):
    rng = np.random.default_rng(seed)
    S = model.config.img_size
    return rng.standard_normal((n, S, S, 3)), rng.integers(0, 5, n)


@pytest.mark.parametrize("eps", [0.0, 0.3])
def test_train_step_uses_the_label_smoothing_asked_for(eps):
    model = tiny("swin_digits", embed_dim=8, depths=(1, 1), num_heads=(1, 2))
    model.eval()                                            # no DropPath: same logits twice
    x, y = _batch(model)
    want = float(cross_entropy_forward(model.forward(x), y, eps)[0])
    opt = SGD(model.params, lr=0.0, momentum=0.0)
    loss, _ = train_step(model, opt, x, y, lr=0.0, label_smoothing=eps, clip_grad=0)
    assert loss == pytest.approx(want, rel=1e-12)
    other = float(cross_entropy_forward(model.forward(x), y, 0.3 - eps)[0])
    assert abs(want - other) > 1e-3


@pytest.mark.parametrize("clip", [0.0, 1e-3, 1e6])
def test_train_step_clips_the_global_gradient_norm_asked_for(clip):
    """SGD with lr 1 and no momentum moves the weights by exactly the (clipped) gradient."""
    model = tiny("swin_digits", embed_dim=8, depths=(1, 1), num_heads=(1, 2))
    model.eval()
    x, y = _batch(model, seed=1)
    before = {k: v.copy() for k, v in model.params.items()}
    opt = SGD(model.params, lr=1.0, momentum=0.0)
    train_step(model, opt, x, y, lr=1.0, label_smoothing=0.0, clip_grad=clip)
    moved = np.sqrt(sum(((before[k] - v) ** 2).sum() for k, v in model.params.items()))
    # the unclipped norm, from a fresh backward at the old weights
    model2 = tiny("swin_digits", embed_dim=8, depths=(1, 1), num_heads=(1, 2))
    model2.load_state_dict(before)
    model2.eval()
    model2.zero_grad()
    from minswin.loss import cross_entropy_backward
    _, cache = cross_entropy_forward(model2.forward(x), y, 0.0)
    model2.backward(cross_entropy_backward(1.0, cache))
    full = np.sqrt(sum((g ** 2).sum() for g in model2.grads.values()))
    assert full > 1e-2
    want = full if clip == 0 or clip >= full else clip
    assert moved == pytest.approx(want, rel=1e-6)


# ---------------------------------------------------------------------------- DropPath

@pytest.mark.parametrize("name", ["swin_micro", "swinv2_digits"])
def test_each_block_drops_at_its_official_rate(name):
    """Official: dpr = linspace(0, drop_path_rate, sum(depths)), block by block in order."""
    model = tiny(name, drop_path_rate=0.3, depths=(2, 3), num_heads=(2, 4))
    rates = [blk.drop_path for layer in model.layers for blk in layer.blocks]
    np.testing.assert_allclose(rates, np.linspace(0, 0.3, 5), rtol=0, atol=1e-15)


def test_droppath_at_rate_0_or_in_eval_draws_no_random_number():
    x = np.ones((4, 3))
    for p, training in ((0.0, True), (0.5, False)):
        rng = np.random.default_rng(0)
        state = copy.deepcopy(rng.bit_generator.state)
        out, _ = droppath_forward(x, p, training, rng)
        assert rng.bit_generator.state == state, (p, training)
        assert out is x or np.array_equal(out, x)


@pytest.mark.parametrize("name", ["swin_micro", "swinv2_digits"])
def test_a_model_with_drop_path_rate_0_draws_no_random_number_in_training(name):
    model = tiny(name, depths=(1, 1), num_heads=(1, 2), embed_dim=8, drop_path_rate=0.0)
    model.train()
    state = copy.deepcopy(model.rng.bit_generator.state)
    x, _ = _batch(model, n=2)
    model.forward(x)
    assert model.rng.bit_generator.state == state


def test_v2_droppath_comes_after_the_post_norm():
    """x1 = x + keep1/(1-p) * norm1(attn(x)); out = x1 + keep2/(1-p) * norm2(mlp(x1)), as the
    official SwinTransformerBlock V2 (and timm's): the samples DropPath keeps are scaled
    AFTER the LayerNorm, the dropped ones add nothing."""
    p = 0.5
    model = tiny("swinv2_digits", drop_path_rate=0.9, depths=(2, 2), num_heads=(2, 4))
    blk = model.layers[0].blocks[1]                        # the shifted block
    blk.drop_path = p
    rng = np.random.default_rng(7)
    for norm in (blk.norm1, blk.norm2):                    # V2 starts them at 0: wake them
        norm.params["weight"][...] = 1 + 0.5 * rng.standard_normal(norm.params["weight"].shape)
        norm.params["bias"][...] = 0.3 * rng.standard_normal(norm.params["bias"].shape)
    B = 8
    H, W = blk.input_resolution
    x = rng.standard_normal((B, H, W, blk.dim))
    blk.train()
    twin = copy.deepcopy(blk.rng)
    out = blk.forward(x)
    keep1 = (random_uniform(twin, B, np) >= p).reshape(B, 1, 1, 1) / (1 - p)
    keep2 = (random_uniform(twin, B, np) >= p).reshape(B, 1, 1, 1) / (1 - p)
    assert 0 < keep1.sum() < B * 2 and 0 < keep2.sum() < B * 2   # some kept, some dropped
    a, _ = blk.attend_in_windows(x)
    x1 = x + keep1 * blk.norm1.forward(a)
    want = x1 + keep2 * blk.norm2.forward(blk.mlp.forward(x1))
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------- found by mutmut
# Survivors of `make mutate AREA=minswin/optim.py` that changed behaviour: each test below
# kills one family of them.

def test_sgd_without_momentum_steps_down_the_gradient_and_decays_at_wd_1():
    p, g = np.array([1.0, -2.0]), np.array([0.5, 0.25])
    opt = SGD({"w": p.reshape(1, 2)}, lr=0.1, momentum=0.0, weight_decay=1.0)
    opt.step({"w": g.reshape(1, 2)})
    np.testing.assert_allclose(opt.params["w"][0], [1.0 - 0.1 * (0.5 + 1.0),
                                                    -2.0 - 0.1 * (0.25 - 2.0)])
    assert opt.state == {}                                 # no buffer without momentum


def test_adamw_decays_at_wd_1():
    w = np.full((1, 2), 2.0)
    opt = AdamW({"w": w}, lr=0.1, weight_decay=1.0)
    opt.step({"w": np.zeros((1, 2))})                      # zero gradient: only the decay
    np.testing.assert_allclose(w, 2.0 * (1 - 0.1 * 1.0))


def test_the_optimisers_defaults_are_torch_s():
    sgd, adamw = SGD({"w": np.zeros((2, 2))}), AdamW({"w": np.zeros((2, 2))})
    assert (sgd.lr, sgd.momentum, sgd.weight_decay, sgd.nesterov) == (0.1, 0.9, 0.0, False)
    assert (adamw.lr, adamw.weight_decay) == (1e-3, 0.05)  # torch's lr, the official decay


def test_create_optimizer_passes_every_keyword():
    from minswin.optim import create_optimizer
    opt = create_optimizer("sgd", {"w": np.zeros((2, 2))}, lr=0.5, momentum=0.0,
                           weight_decay=0.25)
    assert (opt.lr, opt.momentum, opt.weight_decay) == (0.5, 0.0, 0.25)


@pytest.mark.parametrize("bad", [np.nan, 1.0, 1.5, -0.1])
def test_adamw_betas_outside_0_1_are_refused(bad):
    for betas in ((bad, 0.999), (0.9, bad)):
        with pytest.raises(ValueError, match=r"betas\[[01]\]: expected"):
            AdamW({"w": np.zeros((2, 2))}, betas=betas)
    with pytest.raises(ValueError, match="betas: expected a pair"):
        AdamW({"w": np.zeros((2, 2))}, betas=(0.9,))


def test_the_step_count_is_saved_as_int64_and_a_fresh_state_loads():
    w = np.zeros((2, 2))
    opt = AdamW({"w": w})
    sd = opt.state_dict()
    assert sd["optimizer.step"].dtype == np.int64 and sd["optimizer.step"].shape == (1,)
    fresh = AdamW({"w": w.copy(), "v": np.zeros((3, 1))})
    fresh.load_state_dict({"optimizer.step": np.array([0])})   # step 0: nothing to restore
    assert fresh.t == 0 and fresh.state["exp_avg"] == {}
    one = AdamW({"w": w.copy()})
    with pytest.raises(KeyError, match="missing 'optimizer.exp_avg.w' for a adamw optimiser "
                                       "at step 1"):
        one.load_state_dict({"optimizer.step": np.array([1])})


def test_moments_load_in_the_parameter_dtype():
    w = np.zeros((2, 2), np.float32)
    opt = AdamW({"w": w})
    opt.load_state_dict({"optimizer.step": np.array([[3]]),
                         "optimizer.exp_avg.w": np.ones((2, 2)),
                         "optimizer.exp_avg_sq.w": np.ones((2, 2))})
    assert opt.t == 3 and opt.state["exp_avg"]["w"].dtype == np.float32


def test_cosine_lr_edges():
    from minswin.optim import cosine_lr
    assert cosine_lr(0, base_lr=1.0, total_steps=1) == 1.0          # one step: base lr
    assert cosine_lr(4, base_lr=1.0, total_steps=4, warmup_steps=4) == 1.0   # all warm-up
    assert cosine_lr(2, base_lr=1.0, total_steps=4, warmup_steps=4, warmup_lr=0.5) == 0.75
    for bad in (dict(total_steps=0), dict(total_steps=3, warmup_steps=4),
                dict(total_steps=3, warmup_steps=-1)):
        with pytest.raises(ValueError, match="warmup_steps: expected"):
            cosine_lr(0, base_lr=1.0, **bad)
    with pytest.raises(ValueError, match="step: expected a step >= 0, got -1"):
        cosine_lr(-1, base_lr=1.0, total_steps=3)


def test_clipping_keeps_float32_gradients_and_refuses_a_norm_of_0():
    from minswin.optim import clip_grad_norm
    g = {"w": np.full((2, 2), 10.0, np.float32)}
    clip_grad_norm(g, 1.0)
    assert g["w"].dtype == np.float32
    assert np.sqrt((g["w"].astype(np.float64) ** 2).sum()) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError, match=r"max_norm: expected a value in \(0.0, inf\)"):
        clip_grad_norm(g, 0.0)


def test_droppath_drops_whole_samples_keeps_dtype_and_its_backward_drops_the_same():
    from minswin.ops.droppath import droppath_backward
    rng = np.random.default_rng(3)
    x = np.ones((6, 2, 3), np.float32)                     # B=6, not equal to any other axis
    out, cache = droppath_forward(x, 0.5, True, rng)
    assert out.dtype == np.float32
    per_sample = out.reshape(6, -1)
    assert set(np.unique(per_sample)) <= {0.0, 2.0}
    assert all(len(set(row)) == 1 for row in per_sample.tolist())   # whole samples
    assert 0 < (per_sample[:, 0] == 0).sum() < 6
    dx = droppath_backward(np.ones_like(x), cache)
    np.testing.assert_array_equal(dx, out)                 # the same samples, the same scale
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match=r"p: expected a drop probability in \[0, 1\)"):
            droppath_forward(x, bad, True, rng)


@pytest.mark.parametrize("rule", ["sgd", "adamw"])
def test_an_update_refuses_arrays_from_two_backends(rule, standin_arrays):
    """Each array of an update is checked: one of them on the (stand-in) GPU is an error."""
    from minswin.optim import adamw_update, sgd_update
    cp = standin_arrays
    n = 3 if rule == "sgd" else 4
    for i in range(n):
        arrays = [np.ones(2) for _ in range(n)]
        arrays[i] = cp.asarray(arrays[i])
        with pytest.raises(TypeError, match="two backends"):
            if rule == "sgd":
                sgd_update(*arrays, lr=0.1, momentum=0.9, wd=0.0, nesterov=False, first=True)
            else:
                adamw_update(*arrays, t=1, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, wd=0.0)


def test_check_labels_takes_1d_integer_labels_in_range_only():
    from minswin.loss import check_labels
    check_labels(np.array([0, 4, 2]), 5)                   # fine: nothing raised
    with pytest.raises(ValueError, match=r"labels: expected class indices in \[0, 5\), got "
                                         r"values in \[0, 5\]"):
        check_labels(np.array([0, 5]), 5)
    with pytest.raises(ValueError, match=r"labels: expected a 1-d array, got shape \(1, 2\)"):
        check_labels(np.array([[0, 1]]), 5)
    with pytest.raises(TypeError, match="labels: expected an integer array, got float64"):
        check_labels(np.array([0.0, 1.0]), 5)


def _w():
    return {"w": np.zeros((2, 2)), "b": np.zeros(2)}


BAD_HYPER = [   # (call, error type, the whole message, as a regular expression)
    (lambda: AdamW(_w(), lr=True), ValueError, r"lr: expected a number, got True"),
    (lambda: AdamW(_w(), lr=float("nan")), ValueError, r"lr: expected a number, got nan"),
    (lambda: AdamW(_w(), lr=-1.0), ValueError, r"lr: expected a value in \[0.0, inf\), got -1.0"),
    (lambda: AdamW(_w(), weight_decay=-1.0), ValueError,
     r"weight_decay: expected a value in \[0.0, inf\), got -1.0"),
    (lambda: AdamW(_w(), eps=-1.0), ValueError, r"eps: expected a value in \[0.0, inf\), got -1.0"),
    (lambda: AdamW(_w(), betas=(1.0, 0.9)), ValueError,
     r"betas\[0\]: expected a value in \[0.0, 1.0\), got 1.0"),
    (lambda: AdamW(_w(), betas=[0.9]), ValueError,
     r"betas: expected a pair \(beta1, beta2\), got \[0.9\]"),
    (lambda: SGD(_w(), momentum=1.0), ValueError,
     r"momentum: expected a value in \[0.0, 1.0\), got 1.0"),
    (lambda: SGD(_w(), momentum=0.0, nesterov=True), ValueError,
     r"nesterov: expected momentum > 0 with nesterov=True, got momentum 0"),
    (lambda: AdamW({}), TypeError, r"params: expected a non-empty dict name -> array, got dict"),
    (lambda: AdamW([np.zeros(2)]), TypeError,
     r"params: expected a non-empty dict name -> array, got list"),
    (lambda: AdamW(_w()).step({"w": np.zeros((2, 2)), "x": np.zeros(1), "y": np.zeros(1),
                               "z": np.zeros(1), "zz": np.zeros(1)}), KeyError,
     r"grads: expected the same keys as params; missing \['b'\], unexpected \['x', 'y', 'z'\]"),
    (lambda: AdamW(_w()).load_state_dict({"a": 1, "b": 2, "c": 3, "d": 4}), KeyError,
     r"state: expected key 'optimizer.step' \(an optimiser state_dict\), got keys "
     r"\['a', 'b', 'c'\]\.\.\."),
    (lambda: AdamW(_w()).load_state_dict({"optimizer.step": np.array([1]),
                                          "optimizer.exp_avg.w": np.zeros((3, 2))}), ValueError,
     r"state\['optimizer.exp_avg.w'\]: expected shape \(2, 2\), got \(3, 2\)"),
]


@pytest.mark.parametrize("k", range(len(BAD_HYPER)))
def test_bad_hyper_parameters_name_the_argument_and_the_bound(k):
    call, err, message = BAD_HYPER[k]
    with pytest.raises(err) as info:
        call()
    text = info.value.args[0]
    import re
    assert re.fullmatch(message, text), text


def test_an_optimiser_refuses_a_learning_rate_set_wrong_between_steps():
    opt = AdamW(_w())
    opt.lr = -0.5
    with pytest.raises(ValueError, match=r"^lr: expected a value in \[0.0, inf\), got -0.5$"):
        opt.step({k: np.zeros_like(v) for k, v in opt.params.items()})


def test_a_state_at_step_0_loads_what_it_has_for_every_parameter():
    opt = AdamW({"a": np.zeros((2, 2)), "b": np.zeros((2, 2))})
    opt.load_state_dict({"optimizer.step": np.array([0]), "optimizer.exp_avg.b": np.ones((2, 2))})
    assert list(opt.state["exp_avg"]) == ["b"]


def test_log_softmax_shifts_each_row_by_its_own_max():
    from minswin.loss import log_softmax
    z = np.array([[0.0, 1.0], [1000.0, 1001.0]])
    want = np.log(np.exp([0.0, 1.0]) / np.exp([0.0, 1.0]).sum())
    np.testing.assert_allclose(log_softmax(z), [want, want], rtol=1e-12)


def test_the_loss_gradient_keeps_float32_for_an_array_dout():
    from minswin.loss import cross_entropy_backward
    _, cache = cross_entropy_forward(np.zeros((2, 3), np.float32), np.array([0, 1]))
    assert cross_entropy_backward(np.float64(1.0), cache).dtype == np.float32
    assert cross_entropy_backward(np.asarray(2.0), cache).dtype == np.float32


def test_the_loss_and_the_count_refuse_arrays_from_two_backends(standin_arrays):
    from minswin.loss import accuracy_count
    cp = standin_arrays
    logits, labels = np.zeros((2, 3)), np.array([0, 1])
    for a, b in ((cp.asarray(logits), labels), (logits, cp.asarray(labels))):
        for fn in (cross_entropy_forward, accuracy_count):
            with pytest.raises(TypeError, match="two backends"):
                fn(a, b)


def test_loss_optimiser_and_droppath_stay_on_the_arrays_backend(standin_arrays):
    """Everything made inside (one-hot targets, moments, keep masks) is made where the inputs
    live: on the (stand-in) GPU, a NumPy array anywhere in the computation is an error."""
    from minswin.loss import cross_entropy_backward
    cp = standin_arrays
    loss, cache = cross_entropy_forward(cp.asarray(np.zeros((2, 3))), cp.asarray(np.array([0, 2])))
    assert isinstance(loss, cp.ndarray)
    assert isinstance(cross_entropy_backward(1.0, cache), cp.ndarray)
    w = cp.asarray(np.ones((2, 2)))
    opt = AdamW({"w": w})
    opt.step({"w": cp.asarray(np.ones((2, 2)))})
    assert isinstance(opt.state["exp_avg"]["w"], cp.ndarray)
    out, _ = droppath_forward(cp.asarray(np.ones((4, 3))), 0.5, True, np.random.default_rng(0))
    assert isinstance(out, cp.ndarray)


def test_the_loss_names_what_is_wrong_with_its_inputs():
    from minswin.loss import check_labels
    with pytest.raises(TypeError, match=r"^labels: expected an integer array, got list$"):
        check_labels([0, 1], 5)
    with pytest.raises(ValueError, match=r"^logits: expected at least one row, got shape "
                                         r"\(0, K\)$"):
        cross_entropy_forward(np.zeros((0, 3)), np.zeros(0, int))
    with pytest.raises(ValueError, match=r"^logits: "):
        cross_entropy_forward(np.zeros(3), np.zeros(3, int))
    # check_values=False: the values are not looked at (the caller has checked them)
    cross_entropy_forward(np.zeros((1, 3)), np.array([-1]), check_values=False)
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\)"):
        cross_entropy_forward(np.zeros((1, 3)), np.array([-1]))
    with pytest.raises(KeyError, match=r"missing \['a', 'b', 'c'\], unexpected \[\]"):
        AdamW({k: np.zeros((2, 2)) for k in "abcdef"}).step({k: np.zeros((2, 2)) for k in "ef"})


def test_the_loss_gradient_of_a_gpu_dout_stays_on_the_gpu(standin_arrays):
    from minswin.loss import cross_entropy_backward
    cp = standin_arrays
    _, cache = cross_entropy_forward(cp.asarray(np.zeros((2, 3))), cp.asarray(np.array([0, 2])))
    assert isinstance(cross_entropy_backward(cp.asarray(1.0), cache), cp.ndarray)
