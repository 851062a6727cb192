"""Optimisers, the learning-rate schedule and gradient clipping, written out step by step.

Symbols: p a parameter, g its gradient, t the step count (1 after the first step), lr the
learning rate, wd the weight decay, m / v Adam's first / second moment estimates.

    SGD (PyTorch semantics):  g <- g + wd p;  b <- mu b + g (b = g on the first step);
                              p <- p - lr (g + mu b)   with Nesterov,  p - lr b  without
    AdamW (decoupled decay):  p <- p (1 - lr wd);  m <- b1 m + (1 - b1) g;
                              v <- b2 v + (1 - b2) g^2;
                              p <- p - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

The update rules are small pure functions on arrays (`sgd_update`, `adamw_update`) that write
into `p` and the state arrays in place; the classes only keep the state dicts and the step
count. Parameters and gradients are dicts with the same keys (the model's `params` and
`grads`), so an optimiser never needs to know what a layer is.

Weight decay follows the official Swin recipe (`build_optimizer` / `set_weight_decay`):
no decay for 1-d parameters (LayerNorm weights and biases), for names ending in ".bias", or
for names containing "relative_position_bias_table" or "absolute_pos_embed" (Swin V2: also
"cpb_mlp" and "logit_scale").
"""
import math

from .backend import get_xp, to_numpy

# as in the official `set_weight_decay`: skip list {'absolute_pos_embed'} and skip keywords
# {'relative_position_bias_table'}; Swin V2 adds {'cpb_mlp', 'logit_scale'}
# (swin_transformer_v2.py's no_weight_decay_keywords)
NO_DECAY_KEYWORDS = ("relative_position_bias_table", "absolute_pos_embed", "cpb_mlp",
                     "logit_scale")


def uses_weight_decay(name, p):
    """True when parameter `name` (shape of `p`) is decayed in the official recipe."""
    if p.ndim <= 1 or name.endswith(".bias"):
        return False
    return not any(k in name for k in NO_DECAY_KEYWORDS)


def _check_same_keys(params, grads):
    if set(params) != set(grads):
        missing = sorted(set(params) - set(grads))[:3]
        extra = sorted(set(grads) - set(params))[:3]
        raise KeyError(f"grads: expected the same keys as params; missing {missing}, "
                       f"unexpected {extra}")


def _check_hyper(name, value, low=0.0, high=None, low_open=False):
    """A float hyper-parameter in [low, high) (or (low, high) with low_open)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    if value < low or (low_open and value == low) or (high is not None and value >= high):
        bound = f"{'(' if low_open else '['}{low}, {high if high is not None else 'inf'})"
        raise ValueError(f"{name}: expected a value in {bound}, got {value!r}")
    return float(value)


# ---------------------------------------------------------------------------- update rules

def sgd_update(p, g, buf, *, lr, momentum, wd, nesterov, first):
    """One SGD step for one array, in place on `p` and `buf` (PyTorch's `SGD`).

    `first` is True on the step that initialises the momentum buffer to the gradient itself
    (PyTorch does the same: no damping of the first gradient towards zero).
    """
    get_xp(p, g, buf)                                     # one backend for all three
    if wd != 0.0:
        g = g + wd * p                                    # coupled L2 decay, as in torch SGD
    if momentum == 0.0:
        p -= lr * g
        return p
    if first:
        buf[...] = g
    else:
        buf *= momentum
        buf += g
    step = g + momentum * buf if nesterov else buf        # Nesterov looks one step ahead
    p -= lr * step
    return p


def adamw_update(p, g, m, v, *, t, lr, beta1, beta2, eps, wd):
    """One AdamW step for one array, in place on `p`, `m` and `v` (PyTorch's `AdamW`).

    The decay multiplies the weights directly (decoupled, Loshchilov & Hutter) instead of
    being added to the gradient, so it is not rescaled by Adam's per-coordinate step size.
    """
    xp = get_xp(p, g, m, v)
    if wd != 0.0:
        p *= 1.0 - lr * wd                                # decoupled decay first, as torch
    m *= beta1
    m += (1.0 - beta1) * g                                # m = b1 m + (1 - b1) g
    v *= beta2
    v += (1.0 - beta2) * g * g                            # v = b2 v + (1 - b2) g^2
    bc1 = 1.0 - beta1 ** t                                # bias corrections (Python floats)
    bc2 = 1.0 - beta2 ** t
    denom = xp.sqrt(v) / math.sqrt(bc2) + eps            # sqrt(v_hat) + eps, as torch
    p -= (lr / bc1) * m / denom
    return p


# ---------------------------------------------------------------------------- optimisers

class Optimizer:
    """Holds the live parameters, per-parameter state and the step count.

    Subclasses name their state arrays in `STATE` and implement `_update(name, p, g)`.
    `lr` is a plain attribute: set it before each `step` to follow a schedule.
    """
    STATE = ()
    KIND = ""

    def __init__(self, params, lr, weight_decay):
        if not isinstance(params, dict) or not params:
            raise TypeError(f"params: expected a non-empty dict name -> array, got "
                            f"{type(params).__name__}")
        self.params = params
        self.lr = _check_hyper("lr", lr)
        self.weight_decay = _check_hyper("weight_decay", weight_decay)
        self.decay = {k: uses_weight_decay(k, p) for k, p in params.items()}
        self.t = 0                                          # number of steps taken
        self.state = {s: {} for s in self.STATE}           # state name -> param name -> array

    def _zeros_like(self, p):
        xp = get_xp(p)
        return xp.zeros_like(p)

    def step(self, grads):
        """Update every parameter in place from `grads` (same keys as `params`)."""
        _check_same_keys(self.params, grads)
        _check_hyper("lr", self.lr)
        self.t += 1
        for name, p in self.params.items():
            for s in self.STATE:
                if name not in self.state[s]:
                    self.state[s][name] = self._zeros_like(p)
            wd = self.weight_decay if self.decay[name] else 0.0
            self._update(name, p, grads[name], wd)

    def state_dict(self, prefix="optimizer."):
        """Flat dict of arrays, e.g. 'optimizer.exp_avg.head.weight', and the step count.

        The step count is stored as a (1,) int64 array so a checkpoint holds only arrays.
        """
        xp = get_xp(*self.params.values())
        out = {f"{prefix}step": xp.asarray([self.t], dtype=xp.int64)}   # (1,)
        for s, arrays in self.state.items():
            for name, a in arrays.items():
                out[f"{prefix}{s}.{name}"] = a
        return out

    def load_state_dict(self, state, prefix="optimizer."):
        """Restore from `state_dict()` output (arrays are copied into the right backend)."""
        key = f"{prefix}step"
        if key not in state:
            raise KeyError(f"state: expected key {key!r} (an optimiser state_dict), got keys "
                           f"{sorted(state)[:3]}...")
        self.t = int(to_numpy(state[key]).reshape(-1)[0])
        xp = get_xp(*self.params.values())
        for s in self.STATE:
            self.state[s] = {}
            for name, p in self.params.items():
                k = f"{prefix}{s}.{name}"
                if k not in state:
                    if self.t > 0:
                        raise KeyError(f"state: missing {k!r} for a {self.KIND} optimiser at "
                                       f"step {self.t}")
                    continue
                a = state[k]
                if tuple(a.shape) != tuple(p.shape):
                    raise ValueError(f"state[{k!r}]: expected shape {tuple(p.shape)}, got "
                                     f"{tuple(a.shape)}")
                self.state[s][name] = xp.asarray(a, dtype=p.dtype).copy()


class SGD(Optimizer):
    """SGD with momentum (optionally Nesterov), as `torch.optim.SGD` (dampening 0)."""
    STATE = ("momentum_buffer",)
    KIND = "sgd"

    def __init__(self, params, lr=0.1, momentum=0.9, weight_decay=0.0, nesterov=False):
        super().__init__(params, lr, weight_decay)
        self.momentum = _check_hyper("momentum", momentum, 0.0, 1.0)
        if nesterov and self.momentum == 0.0:
            raise ValueError("nesterov: expected momentum > 0 with nesterov=True, got "
                             "momentum 0")
        self.nesterov = bool(nesterov)
        if self.momentum == 0.0:
            self.STATE = ()
            self.state = {}

    def _update(self, name, p, g, wd):
        buf = self.state["momentum_buffer"][name] if self.momentum else None
        sgd_update(p, g, buf, lr=self.lr, momentum=self.momentum, wd=wd,
                   nesterov=self.nesterov, first=self.t == 1)


class AdamW(Optimizer):
    """AdamW (Adam with decoupled weight decay), as `torch.optim.AdamW` (amsgrad off)."""
    STATE = ("exp_avg", "exp_avg_sq")
    KIND = "adamw"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05):
        super().__init__(params, lr, weight_decay)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas: expected a pair (beta1, beta2), got {betas!r}")
        self.beta1 = _check_hyper("betas[0]", betas[0], 0.0, 1.0)
        self.beta2 = _check_hyper("betas[1]", betas[1], 0.0, 1.0)
        self.eps = _check_hyper("eps", eps)

    def _update(self, name, p, g, wd):
        adamw_update(p, g, self.state["exp_avg"][name], self.state["exp_avg_sq"][name],
                     t=self.t, lr=self.lr, beta1=self.beta1, beta2=self.beta2, eps=self.eps,
                     wd=wd)


OPTIMIZERS = {"sgd": SGD, "adamw": AdamW}


def create_optimizer(name, params, **kwargs):
    """'sgd' or 'adamw' -> an optimiser over `params` (kwargs go to its constructor)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {sorted(OPTIMIZERS)}, got {name!r}")
    return OPTIMIZERS[name](params, **kwargs)


# ---------------------------------------------------------------------------- schedule

def cosine_lr(step, *, base_lr, total_steps, warmup_steps=0, warmup_lr=0.0, min_lr=0.0):
    """Learning rate for update number `step` (0-based): linear warm-up, then cosine decay.

        step < warmup:  warmup_lr + (base_lr - warmup_lr) * step / warmup
        otherwise:      min_lr + (base_lr - min_lr) * (1 + cos(pi * s / S)) / 2
                        with s = step - warmup, S = total_steps - warmup

    The cosine starts after the warm-up (the official recipe's `WARMUP_PREFIX`), so the first
    post-warm-up step uses exactly `base_lr` and the last one is just above `min_lr`.
    """
    if total_steps <= 0 or not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"warmup_steps: expected 0 <= warmup_steps <= total_steps (> 0), got "
                         f"warmup_steps={warmup_steps}, total_steps={total_steps}")
    if step < 0:
        raise ValueError(f"step: expected a step >= 0, got {step}")
    if step < warmup_steps:
        return warmup_lr + (base_lr - warmup_lr) * step / warmup_steps
    s = min(step, total_steps) - warmup_steps
    span = max(total_steps - warmup_steps, 1)
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * s / span))


# ---------------------------------------------------------------------------- clipping

def global_grad_norm(grads):
    """sqrt(sum of squares of every gradient): a 0-d array on the gradients' backend."""
    xp = get_xp(*grads.values())
    total = sum(xp.sum(g.astype(xp.float64) ** 2) for g in grads.values())  # ()
    return xp.sqrt(total)


def clip_grad_norm(grads, max_norm, eps=1e-6):
    """Scale all gradients in place so their global L2 norm is at most `max_norm`.

    As `torch.nn.utils.clip_grad_norm_`: coef = max_norm / (norm + eps), applied only when it
    is below 1. The coefficient stays an array, so no host-device sync is needed on a GPU.
    Returns the norm before clipping (a 0-d float64 array).
    """
    _check_hyper("max_norm", max_norm, 0.0, low_open=True)
    xp = get_xp(*grads.values())
    norm = global_grad_norm(grads)                            # ()
    coef = xp.minimum(max_norm / (norm + eps), 1.0)          # ()
    for g in grads.values():
        g *= coef.astype(g.dtype)
    return norm
