"""Training a Swin from scratch with the hand-written backward: the loop, checkpoints, resume.

One step is four lines, and everything else in this file is bookkeeping around them:

    logits = model.forward(x)                              # (B, K)
    loss, cache = cross_entropy_forward(logits, y, eps)    # ()
    model.backward(cross_entropy_backward(1.0, cache))     # fills model.grads
    optimizer.step(model.grads)                            # updates model.params in place

Reproducibility. Every source of randomness is named by numbers: the weights by `seed`, the
split by `split_seed`, the order and shifts of batch b in epoch e by (seed, e, b) (see
`minswin.data`), DropPath by the model's own Generator `model.rng`. A checkpoint stores the
weights, the optimiser state, the step and `model.rng`'s state, so a run that is stopped
(`stop_after`, Ctrl-C) and resumed ends with the same weights, bit for bit on NumPy, as a run
that was never stopped. The learning-rate schedule is a function of the step and of the
planned number of epochs; to continue a finished run for longer, the schedule changes, so that
is a new run, not a resume.

A run never destroys another: `out` must be a new or empty folder, or the folder of the run
being resumed (anything else is refused with a message naming --resume and --out), and a resume
there must start from that run's latest checkpoint (an older one is refused with the command
that resumes into a new folder). The folder is made only after every check has passed, and is
locked for the run (minswin.atomic.owned_folder): a second run on it is refused, and a run that
writes nothing leaves no folder. Every file is written whole or not at all.

Files written to `out`:
    last.safetensors     after every epoch (and on Ctrl-C): weights, `optimizer.*`, metadata
    best.safetensors     the epoch with the best validation accuracy (then lowest val loss)
    (the printed `test accuracy` is that of the final weights; history.json also holds the
    best-validation checkpoint's test accuracy)
    history.json         per-epoch metrics, the loss of every step, the config, test results
    curves.png           loss and accuracy per epoch (matplotlib, Agg)
"""
import contextlib
import dataclasses
import json
import math
import os
import signal
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .atomic import owned_folder, write_atomically
from .backend import get_xp, to_backend, to_numpy
from .checkpoint import load_checkpoint, nonfinite_problems, save_checkpoint
from .checks import check_positive_int, check_seed
from .data import batch_slices, epoch_order, load_dataset, train_batch
from .grad_mode import no_grad
from .loss import accuracy_count, check_labels, cross_entropy_backward, cross_entropy_forward
from .memory import check_batch_fits, check_model_fits, largest_batch
from .optim import clip_grad_norm, cosine_lr, create_optimizer

META_KEY = "minswin.train"          # checkpoint metadata key holding the training state (JSON)
OPT_PREFIX = "optimizer."           # checkpoint keys of the optimiser state


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (and nothing about where files go)."""
    model: str = "swin_digits"      # a name in minswin.configs.CONFIGS
    model_overrides: dict = field(default_factory=dict)   # config fields, e.g. embed_dim
    data: str = "digits"            # "digits", a folder of class folders, or an .npz
    epochs: int = 70
    batch_size: int = 64
    optimizer: str = "adamw"        # "adamw" or "sgd"
    lr: float = 2e-3
    weight_decay: float = 0.05
    momentum: float = 0.9           # SGD only
    warmup_epochs: float = 2.0
    min_lr: float = 1e-5
    label_smoothing: float = 0.1
    clip_grad: float = 5.0          # max global gradient norm; 0 turns clipping off
    max_shift: int = 1              # random shift augmentation, in input pixels
    seed: int = 0
    split_seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    limit: int = 0                  # use only the first `limit` training images (0: all)
    dtype: str = "float32"
    init: str = "lecun"             # "official" (std .02) or "lecun" (see `rescale_init`)

    def as_dict(self):
        return dataclasses.asdict(self)


TRAIN_CONFIGS = {
    # the default: a two-stage Swin on the digits upsampled to 16x16 (see configs.py);
    # results in benchmarks/results/train_digits.md
    "digits": TrainConfig(),
    # seconds, for tests and the tutorial's short mode: a tiny model, a few hundred images
    "digits_tiny": TrainConfig(model="swin_digits",
                               model_overrides=dict(embed_dim=16, depths=(2, 1),
                                                    num_heads=(2, 2)),
                               epochs=2, batch_size=32, lr=5e-3, warmup_epochs=0.5,
                               limit=256),
}

# fields that may differ when resuming: they change where the run stops, not what it computes
RESUME_MAY_CHANGE = ("epochs",)


class TrainResult(NamedTuple):
    test_acc: float                 # accuracy of the final weights on the test split
    test_loss: float
    history: dict
    out: str
    best_path: str
    last_path: str
    model: object                   # the model, holding the final weights
    config: TrainConfig
    finished: bool                  # False when stopped early by `stop_after`


class TrainingFailed(RuntimeError):
    """The run started but could not go on (a checkpoint could not be written, the loss
    diverged); the message says what was kept. `minswin train` exits with 1."""


class TrainingDiverged(TrainingFailed):
    """The loss became NaN or Inf; the run stopped and the last good checkpoint was kept."""


# ---------------------------------------------------------------------------- config

def _field_types():
    return {f.name: f.type for f in dataclasses.fields(TrainConfig)}


def make_config(config="digits", **overrides):
    """A TrainConfig from a name (or a TrainConfig, or a dict) with fields overridden.

    Overrides that are None are ignored, so CLI flags that were not given change nothing.
    """
    if isinstance(config, TrainConfig):
        base = config
    elif isinstance(config, dict):
        base = TrainConfig(**_from_json_config(config))
    elif config in TRAIN_CONFIGS:
        base = TRAIN_CONFIGS[config]
    else:
        raise ValueError(f"config: expected one of {sorted(TRAIN_CONFIGS)}, got {config!r}")
    known = set(_field_types())
    bad = sorted(set(overrides) - known)
    if bad:
        raise ValueError(f"overrides: unknown training option(s) {bad}; known: {sorted(known)}")
    changes = {k: v for k, v in overrides.items() if v is not None}
    if "model_overrides" in changes:
        given = _from_json_config({"model_overrides": changes["model_overrides"]})
        changes["model_overrides"] = {**base.model_overrides, **given["model_overrides"]}
    cfg = dataclasses.replace(base, **changes)
    _check_config(cfg)
    return cfg


def _from_json_config(d):
    """A config dict read back from JSON: lists -> tuples inside model_overrides."""
    d = dict(d)
    d["model_overrides"] = {k: tuple(v) if isinstance(v, list) else v
                            for k, v in d.get("model_overrides", {}).items()}
    return d


def _check_config(c):
    for name in ("epochs", "batch_size"):
        check_positive_int(name, getattr(c, name))
    for name in ("val_fraction", "test_fraction"):
        v = getattr(c, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1:
            # an empty split would score 0 every epoch: best.safetensors and the test
            # accuracy would be meaningless
            raise ValueError(f"{name}: expected a fraction in (0, 1), got {v!r}")
    for name in ("lr", "weight_decay", "min_lr", "label_smoothing", "clip_grad",
                 "warmup_epochs", "momentum"):
        v = getattr(c, name)
        if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"{name}: expected a finite number >= 0, got {v!r}")
    if c.lr == 0:
        raise ValueError("lr: expected a learning rate > 0, got 0")
    if c.label_smoothing >= 1:
        raise ValueError(f"label_smoothing: expected a value in [0, 1), got {c.label_smoothing!r}")
    from .configs import CONFIGS
    if c.model not in CONFIGS:
        raise ValueError(f"model: expected one of {sorted(CONFIGS)}, got {c.model!r}")
    if c.optimizer not in ("adamw", "sgd"):
        raise ValueError(f"optimizer: expected 'adamw' or 'sgd', got {c.optimizer!r}")
    if c.init not in INITS:
        raise ValueError(f"init: expected one of {INITS}, got {c.init!r}")
    if c.dtype not in ("float32", "float64"):
        raise ValueError(f"dtype: expected 'float32' or 'float64', got {c.dtype!r}")
    if not isinstance(c.max_shift, int) or c.max_shift < 0:
        raise ValueError(f"max_shift: expected an integer >= 0, got {c.max_shift!r}")
    for name in ("seed", "split_seed"):
        check_seed(name, getattr(c, name))
    if not isinstance(c.limit, int) or c.limit < 0:
        raise ValueError(f"limit: expected an integer >= 0 (0 = all), got {c.limit!r}")


# ---------------------------------------------------------------------------- building

INITS = ("official", "lecun")
BLOCK_LINEARS = (".attn.qkv.weight", ".attn.proj.weight", ".mlp.fc1.weight", ".mlp.fc2.weight")


def rescale_init(model):
    """Rescale the block linears from the official N(0, 0.02^2) to N(0, 1/fan_in) (LeCun).

    The official std .02 was chosen for widths of 96 and more. At width 32 it makes every
    attention and MLP branch add only about 1% to the residual stream at first, so the network
    starts as little more than a mean of pixel embeddings and the loss stays near log(10) for
    several epochs. With std 1/sqrt(fan_in) (0.18 at width 32) the branches matter from step
    one; on the digits this reached 70% validation accuracy in 3 epochs instead of 30%.
    Multiplying the official draw keeps the same random numbers, so seeds still mean the same.
    """
    for k, p in model.params.items():
        if k.endswith(BLOCK_LINEARS):
            p *= (1.0 / math.sqrt(p.shape[1])) / 0.02        # (Cout, Cin): fan_in = Cin


def check_training_fits(cfg, num_classes):
    """Refuse, in one line before anything is allocated, a run whose weights, optimiser state
    and training batch would not fit in memory (minswin/memory.py)."""
    from .configs import get_config
    config = get_config(cfg.model, **{**cfg.model_overrides, "num_classes": num_classes})
    check_model_fits(config, cfg.dtype, what="--model")
    return check_batch_fits(config, cfg.batch_size, cfg.dtype, mode="train",
                            optimizer_slots=2 if cfg.optimizer == "adamw" else 1)


DIGITS_SIDE = 8            # scikit-learn's digits are 8x8


def upsampling_warning(cfg, model_config):
    """One line when the digits would be blown up far beyond what they hold (`--model swin_t`
    resizes each 8x8 digit to 224x224): what a step costs against the default model's."""
    if cfg.data != "digits" or model_config.img_size <= 4 * DIGITS_SIDE:
        return None
    from .configs import get_config
    from .flops import model_flops
    default = TrainConfig()
    ratio = model_flops(model_config) / model_flops(get_config(default.model))
    return (f"warning: --model {cfg.model} resizes the {DIGITS_SIDE}x{DIGITS_SIDE} digits to "
            f"{model_config.img_size}x{model_config.img_size} "
            f"({model_config.img_size ** 2 // DIGITS_SIDE ** 2} times the pixels), so each "
            f"image costs {ratio:,.0f} times the FLOPs of the "
            f"default {default.model} and learns nothing more from the same 64 pixels; "
            f"expect minutes per step on a CPU")


def build_model(cfg, num_classes):
    """The model a config describes (weights drawn from `cfg.seed`, then `cfg.init`)."""
    from .model import create_model
    model = create_model(cfg.model, num_classes=num_classes, seed=cfg.seed, dtype=cfg.dtype,
                         **cfg.model_overrides)
    if cfg.init == "lecun":
        rescale_init(model)
    return model


def build_optimizer(cfg, model):
    if cfg.optimizer == "sgd":
        return create_optimizer("sgd", model.params, lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay, nesterov=True)
    return create_optimizer("adamw", model.params, lr=cfg.lr, weight_decay=cfg.weight_decay)


# the warm-up never takes more than this share of a run's steps: `--epochs 1` with the
# default 2 warm-up epochs would otherwise warm up for the whole run and never reach --lr
MAX_WARMUP_FRACTION = 0.2
# the warm-up starts at this fraction of the peak, not at 0, so the first step learns: the
# official recipe's WARMUP_LR / BASE_LR (5e-7 / 5e-4, both scaled alike with the batch)
WARMUP_START = 1e-3


def warmup_steps(cfg, steps_per_epoch):
    """Steps of linear warm-up: cfg.warmup_epochs, at most MAX_WARMUP_FRACTION of the run."""
    total = cfg.epochs * steps_per_epoch
    warmup = int(round(min(cfg.warmup_epochs * steps_per_epoch, total)))   # floats: 1e308
    return min(warmup, int(MAX_WARMUP_FRACTION * total))                   # epochs is the run


def lr_at(cfg, step, steps_per_epoch):
    """The learning rate of update `step` (0-based): warm-up from WARMUP_START * lr, then
    cosine, counted in steps (the warm-up is at most MAX_WARMUP_FRACTION of the run)."""
    total = cfg.epochs * steps_per_epoch
    return cosine_lr(step, base_lr=cfg.lr, total_steps=total,
                     warmup_steps=warmup_steps(cfg, steps_per_epoch),
                     warmup_lr=WARMUP_START * cfg.lr, min_lr=min(cfg.min_lr, cfg.lr))


def load_data(cfg, img_size, mean=None, std=None):
    ds = load_dataset(cfg.data, img_size, split_seed=cfg.split_seed,
                      val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction,
                      mean=mean, std=std)
    if cfg.limit:
        ds = ds._replace(train=ds.train._replace(x=ds.train.x[:cfg.limit],
                                                 y=ds.train.y[:cfg.limit]))
    return ds


# ---------------------------------------------------------------------------- one step

def train_step(model, optimizer, x, y, *, lr, label_smoothing, clip_grad, loss_fn=None):
    """Forward, loss, backward, (clip), update. Returns (loss, correct) as a Python float and
    int, or (loss, None) without touching the weights when the loss is not finite.

    On a GPU this waits for the device once: the loss and the count of correct answers come
    back together, after the backward pass has been queued (so the GPU works meanwhile) and
    before the update, which needs to know that the loss is finite. `y` holds labels already
    checked on the host (`check_labels`), so the loss does not look at their values again.
    """
    xp = get_xp(x, y)
    model.zero_grad()
    logits = model.forward(x)                                       # (B, K)
    if loss_fn is None:
        loss, cache = cross_entropy_forward(logits, y, label_smoothing, check_values=False)
    else:
        loss, cache = loss_fn(logits, y, label_smoothing)           # ()
    correct = accuracy_count(logits, y)                             # ()
    model.backward(cross_entropy_backward(1.0, cache))              # fills model.grads
    both = xp.stack([loss.astype(xp.float64), correct.astype(xp.float64)])   # (2,)
    loss, correct = to_numpy(both).tolist()                         # the step's one sync
    if not math.isfinite(loss):
        return loss, None
    if clip_grad:
        clip_grad_norm(model.grads, clip_grad)
    optimizer.lr = lr
    optimizer.step(model.grads)                                     # params change in place
    return loss, int(correct)


EVAL_BATCH = 256            # images per forward when evaluating, unless fewer fit


def eval_batch_size(model, batch_size=None, flag="--batch-size"):
    """The evaluation batch: `batch_size` when given (refused in one line naming `flag` when
    its no-grad forward would not fit in memory), else EVAL_BATCH or the largest that fits."""
    if batch_size is not None:
        check_batch_fits(model.config, batch_size, model.dtype, mode="no_grad",
                         optimizer_slots=0, flag=flag, size_flag="img_size")
        return batch_size
    fits, _ = largest_batch(model.config, model.dtype, mode="no_grad")
    if fits == 0:                                   # refused, with the estimate
        check_batch_fits(model.config, 1, model.dtype, mode="no_grad", optimizer_slots=0,
                         flag=flag, size_flag="img_size")
    return max(1, min(EVAL_BATCH, fits))


def evaluate_split(model, split, batch_size=None):
    """(mean loss, accuracy, predictions) of `model` in eval mode on a data split, under
    minswin.no_grad() (no caches kept), `batch_size` images at a time (default: 256 or the
    largest batch that fits in memory, `eval_batch_size`)."""
    model.eval()
    xp = model.xp
    if batch_size is not None:                      # no batch is larger than the split
        batch_size = max(1, min(batch_size, len(split.y)))
    batch_size = eval_batch_size(model, batch_size)
    total, correct, preds = 0.0, 0, []
    for start, stop in batch_slices(len(split.y), batch_size):
        x = to_backend(split.x[start:stop].astype(model.dtype), xp)  # (b, H, W, 3)
        y = to_backend(split.y[start:stop], xp)                       # (b,)
        with no_grad():
            logits = model.forward(x)                                 # (b, K), no caches
        loss, _ = cross_entropy_forward(logits, y)
        total += float(to_numpy(loss)) * (stop - start)
        pred = to_numpy(logits.argmax(axis=-1))
        correct += int((pred == split.y[start:stop]).sum())
        preds.append(pred)
    n = max(len(split.y), 1)
    preds = np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)
    return total / n, correct / n, preds


def confusion_matrix(y_true, y_pred, num_classes):
    """(K, K) counts: row = true class, column = predicted class."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


# ---------------------------------------------------------------------------- checkpoints

def save_training_checkpoint(path, model, optimizer, meta):
    """Weights (official keys) + optimiser state (`optimizer.*`) + JSON metadata, written
    atomically by save_checkpoint (never half-written over the last good one)."""
    state = dict(model.state_dict())
    state.update(optimizer.state_dict(prefix=OPT_PREFIX))
    save_checkpoint(path, state, {META_KEY: json.dumps(meta)})


# what a `minswin train` checkpoint's metadata must hold to rebuild its model and data, and
# to continue the run
META_FOR_MODEL = ("config", "classes", "mean", "std", "epoch")
META_FOR_RESUME = META_FOR_MODEL + ("model_rng", "batch", "step", "sums", "best", "best_epoch",
                                    "history", "time_s")


def read_training_checkpoint(path, *, need=META_FOR_MODEL):
    """(model state, optimiser state, meta) from a checkpoint written by `minswin train`.

    need: the metadata fields that must be there (a clear error names the missing ones)."""
    state, metadata = load_checkpoint(path, with_metadata=True)
    if META_KEY not in (metadata or {}):
        raise ValueError(f"checkpoint: {path!r} has no {META_KEY!r} metadata; expected a file "
                         "written by `minswin train` (plain weights cannot be resumed)")
    try:
        meta = json.loads(metadata[META_KEY])
    except ValueError:
        meta = None
    if not isinstance(meta, dict):
        raise ValueError(f"checkpoint: the {META_KEY!r} metadata of {path!r} is not a JSON "
                         "object; expected a file written by `minswin train`")
    missing = [k for k in need if k not in meta]
    if missing:
        raise ValueError(f"checkpoint: the {META_KEY!r} metadata of {path!r} lacks "
                         f"{', '.join(map(repr, missing))}; expected a complete checkpoint "
                         "written by `minswin train`")
    if not isinstance(meta["config"], dict):
        raise ValueError(f"checkpoint: the training config in {path!r} is a "
                         f"{type(meta['config']).__name__}, expected a JSON object")
    model_state = {k: v for k, v in state.items() if not k.startswith(OPT_PREFIX)}
    opt_state = {k: v for k, v in state.items() if k.startswith(OPT_PREFIX)}
    return model_state, opt_state, meta


def config_from_meta(meta, path):
    """The TrainConfig recorded in a checkpoint's metadata, or a ValueError naming the file."""
    try:
        return make_config(meta["config"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"checkpoint: the training config in {path!r} cannot be used: "
                         f"{err}") from None


def model_from_checkpoint(path, *, allow_nonfinite=False):
    """(model with the checkpoint's weights, meta) for evaluation. Weights with NaN or inf
    are refused unless allow_nonfinite=True (for inspecting a broken run)."""
    model_state, _, meta = read_training_checkpoint(path)
    cfg = config_from_meta(meta, path)
    model = build_model(cfg, len(meta["classes"]))
    model.load_state_dict(model_state, strict=True, allow_nonfinite=allow_nonfinite)
    return model, meta


def _rng_state_to_json(rng):
    return rng.bit_generator.state                 # a dict of ints and strings: JSON-safe


def _restore_rng(rng, state):
    rng.bit_generator.state = state


# ---------------------------------------------------------------------------- plots, files

def plot_history(history, path):
    """Loss and accuracy per epoch (train and val) as a PNG. A bare `Figure` (no pyplot), so
    the caller's matplotlib backend is left alone and nothing opens a window."""
    from matplotlib.figure import Figure
    ep = [e["epoch"] for e in history["epochs"]]
    fig = Figure(figsize=(10, 3.8))
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(ep, [e["train_loss"] for e in history["epochs"]], "o-", label="train")
    ax1.plot(ep, [e["val_loss"] for e in history["epochs"]], "s-", label="val")
    ax1.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax2.plot(ep, [100 * e["train_acc"] for e in history["epochs"]], "o-", label="train")
    ax2.plot(ep, [100 * e["val_acc"] for e in history["epochs"]], "s-", label="val")
    ax2.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    from matplotlib.ticker import MaxNLocator
    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))   # whole epochs, no 1.5
    eps = history.get("config", {}).get("label_smoothing", 0.0)
    if eps:                                                 # the train loss's lower bound
        floor = _smoothed_loss_floor(eps, history.get("model_config", {}).get("num_classes", 10))
        ax1.axhline(floor, color="C0", ls=":", lw=1.2,
                    label=f"lowest train loss with label smoothing {eps:g}")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    note = _train_val_note(history)
    if note:
        import textwrap
        fig.text(0.5, 0.01, textwrap.fill(note, 150), ha="center", va="bottom", fontsize=9,
                 color="dimgrey")
    fig.tight_layout(rect=(0, 0.1 if note else 0, 1, 1))
    write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))


def _train_val_note(history):
    """Why the train curve sits above the validation curve, in words, for the plot."""
    cfg, mcfg = history.get("config", {}), history.get("model_config", {})
    eps, drop = cfg.get("label_smoothing", 0.0), mcfg.get("drop_path_rate", 0.0)
    on = [f"label smoothing {eps:g}"] * bool(eps) + [f"DropPath {drop:g}"] * bool(drop)
    if not on:
        return ""
    return (f"Train loss and accuracy are measured during training, with {' and '.join(on)} "
            "on; validation has neither, so the train loss sits above the val loss"
            + (" (with label smoothing it cannot go below the dotted line)" if eps else "")
            + ".")


def _smoothed_loss_floor(eps, K):
    """The smallest cross-entropy against targets smoothed by eps over K classes."""
    hi, lo = 1 - eps + eps / K, eps / K                    # the best prediction is the target
    return float(-hi * math.log(hi) - (K - 1) * lo * math.log(lo))


def plot_confusion(cm, classes, path, title="confusion matrix"):
    """The (K, K) confusion matrix as a PNG, counts written in the cells."""
    from matplotlib.figure import Figure
    K = len(classes)
    fig = Figure(figsize=(0.5 * K + 2.5, 0.5 * K + 2))
    ax = fig.subplots()
    im = ax.imshow(cm, cmap="Blues")
    for i in range(K):
        for j in range(K):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set(xticks=range(K), yticks=range(K), xticklabels=classes, yticklabels=classes,
           xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))


def format_confusion(cm, classes):
    """The confusion matrix as a text table (rows true, columns predicted); class names with
    newlines or terminal escapes are shown escaped."""
    from .checks import escape_name
    classes = [escape_name(c) for c in classes]
    w = max(4, max(len(str(c)) for c in classes) + 1, len(str(cm.max())) + 1)
    head = "true\\pred".ljust(10) + "".join(str(c).rjust(w) for c in classes)
    rows = [str(c).ljust(10) + "".join(str(v).rjust(w) for v in row)
            for c, row in zip(classes, cm)]
    return "\n".join([head] + rows)


def json_safe(obj):
    """obj with every NaN or infinite float replaced by None: strict JSON has no NaN, and
    `null` says "no number" to every parser."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def _write_json(path, obj):
    """Write strict JSON (NaN -> null) atomically: the file is whole or unchanged."""
    text = json.dumps(json_safe(obj), indent=1, allow_nan=False)

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    try:
        write_atomically(path, write)
    except OSError as err:
        raise OSError(f"path: could not write {path!r} ({err.strerror or err})") from None


# ---------------------------------------------------------------------------- Ctrl-C

class _StopFlag:
    """SIGINT (Ctrl-C) or SIGTERM sets a flag the loop reads between steps, so a checkpoint is
    never written in the middle of an update; a second one interrupts at once, except during a
    save, which holds signals until its file is whole (minswin.atomic)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = False
        self._old = {}

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        try:
            for sig in self.SIGNALS:
                self._old[sig] = signal.signal(sig, self._handler)
        except ValueError:          # not the main thread: signals cannot be caught here
            pass
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


# ---------------------------------------------------------------------------- the run

def _resolve(config, resume, overrides):
    """(TrainConfig, checkpoint contents or None) for a new run or a resume."""
    if resume is None:
        return make_config(config, **overrides), None
    model_state, opt_state, meta = read_training_checkpoint(resume, need=META_FOR_RESUME)
    saved = config_from_meta(meta, resume)
    given = make_config(saved, **overrides)
    for name in _field_types():
        if name not in RESUME_MAY_CHANGE and getattr(given, name) != getattr(saved, name):
            raise ValueError(f"{name}: cannot change when resuming (the checkpoint was trained "
                             f"with {getattr(saved, name)!r}, got {getattr(given, name)!r})")
    if given.epochs < meta["epoch"]:
        raise ValueError(f"epochs: the checkpoint has already done {meta['epoch']} epochs, got "
                         f"epochs={given.epochs}")
    return given, (model_state, opt_state, meta)


def train(config="digits", *, out="runs/digits", resume=None, stop_after=None, progress=True,
          plots=True, log=print, threads=1, loss_fn=None, **overrides):
    """Train a Swin on images and test it; see the module docstring for the files written.

    config: a name in TRAIN_CONFIGS ("digits" by default), a TrainConfig or a dict; any
    TrainConfig field may be overridden by keyword (e.g. epochs=5, lr=1e-3, model="swin_micro",
    model_overrides=dict(embed_dim=32)). resume: a `last.safetensors` to continue from (the
    config comes from the checkpoint; only `epochs` may change). stop_after: end this call
    after that many epochs (the schedule still follows `epochs`), e.g. to split a run in two.
    progress: show a tqdm bar; plots: write curves.png; log: where the text lines go.
    threads: BLAS and row-block threads during the run (None: leave as is). One is the default
    because the matrices of a small Swin are too small to share out, and on a busy machine a
    second thread that waits for a core slows every matmul down several times (measured: 2 s
    vs 10 s per digits epoch on 2 shared cores).
    loss_fn: replaces `cross_entropy_forward` (for tests that inject a failure).
    Returns a TrainResult; raises TrainingDiverged on a NaN/Inf loss, KeyboardInterrupt after
    saving `last.safetensors` on Ctrl-C.
    """
    if stop_after is not None:
        check_positive_int("stop_after", stop_after)
    with blas_threads(threads), contextlib.ExitStack() as held:
        return _train(config, out, resume, stop_after, progress, plots, log, loss_fn, threads,
                      overrides, held.enter_context)


RUN_FILES = ("last.safetensors", "best.safetensors", "history.json", "curves.png")


def check_out_folder(out, resume=None, resume_meta=None):
    """Refuse an `out` that holds a run, unless it is the folder of the run being resumed and
    `resume` is that run's latest checkpoint: a run never overwrites another one's files, and
    a resume never overwrites newer files of its own run (resume_meta: the checkpoint's
    metadata, to compare with what the folder holds)."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"out: expected a folder for the run's files, got the file {out!r}")
    held = [f for f in RUN_FILES if os.path.exists(os.path.join(out, f))]
    if not held:
        return
    if resume is None or os.path.realpath(os.path.dirname(os.path.abspath(resume))) \
            != os.path.realpath(out):
        raise FileExistsError(
            f"out: {out!r} already holds a run ({', '.join(held)}), which is never "
            f"overwritten; continue it with --resume {os.path.join(out, 'last.safetensors')} "
            f"or give a new --out folder")
    newer = _newer_work(out, resume, resume_meta)
    if newer:
        stem = os.path.splitext(os.path.basename(resume))[0]
        fresh = os.path.normpath(out) + f"-from-{stem}"
        raise FileExistsError(
            f"resume: {resume!r} is not the latest checkpoint of the run in {out!r} ({newer}); "
            "resuming there would overwrite newer files, which is never done. Resume into a "
            f"new folder: minswin train --resume {resume} --out {fresh}")


def _newer_work(out, resume, meta):
    """Why the run in `out` holds work newer than the checkpoint `resume`, or ""."""
    last = os.path.join(out, "last.safetensors")
    if not (os.path.exists(last) and os.path.samefile(resume, last)):
        return f"that is {last}"
    if meta is None or not all(isinstance(meta.get(k), int) for k in ("step", "epoch")):
        return ""                                  # (a malformed position is refused later)
    best = _recorded(os.path.join(out, "best.safetensors"))
    if best is not None and isinstance(best.get("step"), int) and best["step"] > meta["step"]:
        return (f"best.safetensors is from step {best['step']}, the checkpoint from step "
                f"{meta['step']}")
    history = os.path.join(out, "history.json")
    try:
        if not os.path.isfile(history) or os.path.getsize(history) > 1 << 30:
            raise ValueError("not a history.json minswin wrote")   # (a FIFO would block)
        with open(history, encoding="utf-8") as f:
            epochs = len(json.load(f).get("epochs", []))
    except (OSError, ValueError, AttributeError, TypeError, RecursionError):
        epochs = 0
    if epochs > meta["epoch"]:
        return f"history.json records {epochs} epochs, the checkpoint {meta['epoch']}"
    return ""


def _recorded(path):
    """The training metadata of a checkpoint (its header only), or None."""
    if not os.path.isfile(path):
        return None
    try:
        from safetensors import safe_open
        with safe_open(path, framework="numpy") as f:
            meta = json.loads((f.metadata() or {}).get(META_KEY, "null"))
    except Exception:
        return None
    return meta if isinstance(meta, dict) else None


def where(run, epochs):
    """Where a run stands, in the words both the Ctrl-C message and the resume use."""
    if run["batch"] == 0:
        return f"after epoch {run['epoch']} of {epochs}, step {run['step']}"
    return (f"in epoch {run['epoch'] + 1} of {epochs} after batch {run['batch']}, step "
            f"{run['step']}")


def _check_position(meta, steps_per_epoch):
    """The epoch, batch and step a checkpoint records must describe a place in this run."""
    for k in ("epoch", "batch", "step"):
        v = meta[k]
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"{k}: expected an integer >= 0 in the metadata, got {v!r}")
    if meta["batch"] > steps_per_epoch or \
            meta["step"] != meta["epoch"] * steps_per_epoch + meta["batch"]:
        raise ValueError(f"the metadata's epoch {meta['epoch']}, batch {meta['batch']}, step "
                         f"{meta['step']} do not fit epochs of {steps_per_epoch} steps (has "
                         "the data changed?)")


def _check_run_state(meta):
    """The rest of the run's state a checkpoint records must have the types the loop uses."""
    def number(v):
        return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)
    checks = {
        "best": meta["best"] is None or (isinstance(meta["best"], list)
                                          and len(meta["best"]) == 2
                                          and all(map(number, meta["best"]))),
        "best_epoch": meta["best_epoch"] is None or (isinstance(meta["best_epoch"], int)
                                                      and not isinstance(meta["best_epoch"],
                                                                         bool)),
        "sums": isinstance(meta["sums"], list) and len(meta["sums"]) == 3
        and all(map(number, meta["sums"])),
        "history": isinstance(meta["history"], dict)
        and isinstance(meta["history"].get("epochs"), list)
        and isinstance(meta["history"].get("step_loss"), list),
        "time_s": number(meta["time_s"]),
        "model_rng": isinstance(meta["model_rng"], dict),
    }
    for name, ok in checks.items():
        if not ok:
            raise ValueError(f"{name}: the metadata holds {str(meta[name])[:80]!r}, not what "
                             "minswin train writes there")


def _kept(last, resume):
    """What a run that stops on an error leaves behind, naming only files it wrote (or the
    checkpoint it resumed from)."""
    if last:
        return f"the last good checkpoint {last} was kept (not overwritten)"
    if resume:
        return (f"this run had written no checkpoint yet ({resume}, which it resumed from, is "
                "unchanged)")
    return "no checkpoint had been written yet"


def check_splits(ds, cfg):
    """Refuse splits that cannot give the numbers asked for (before any training)."""
    sizes = {name: len(getattr(ds, name).y) for name in ("train", "val", "test")}
    empty = [name for name, n in sizes.items() if n == 0]
    if empty:
        raise ValueError(
            f"data: {cfg.data!r} gives {sizes['train']} train / {sizes['val']} val / "
            f"{sizes['test']} test images (val_fraction={cfg.val_fraction}, test_fraction="
            f"{cfg.test_fraction}" + (f", limit={cfg.limit}" if cfg.limit else "")
            + f"); expected at least one image in every split, got none in "
            f"{' and '.join(empty)}: use more images")
    if cfg.batch_size > sizes["train"]:
        raise ValueError(f"batch_size: expected at most the {sizes['train']} training images "
                         f"of {cfg.data!r}, got {cfg.batch_size}")


def _train(config, out, resume, stop_after, progress, plots, log, loss_fn, threads, overrides,
           hold):
    t_start = time.perf_counter()
    check_out_folder(out, resume)
    cfg, ckpt = _resolve(config, resume, overrides)
    meta_in = ckpt[2] if ckpt else None
    check_out_folder(out, resume, meta_in)
    mean = np.asarray(meta_in["mean"], np.float32) if ckpt else None
    std = np.asarray(meta_in["std"], np.float32) if ckpt else None

    from .configs import get_config
    model_config = get_config(cfg.model, **cfg.model_overrides)
    img_size = model_config.img_size
    side = min(np.ravel(img_size))                 # the shorter side, were it (H, W)
    if cfg.max_shift >= side:
        raise ValueError(f"max_shift: expected an integer in [0, {side}) (a shift by the "
                         f"image size or more leaves only fill), got {cfg.max_shift}")
    # refused here, before the data are resized and anything is allocated, not killed later
    check_training_fits(cfg, model_config.num_classes)
    warning = upsampling_warning(cfg, model_config)
    if warning:
        log(warning)
    ds = load_data(cfg, img_size, mean, std)
    check_splits(ds, cfg)
    K = len(ds.classes)
    for split in (ds.train, ds.val, ds.test):      # once, on the host: steps skip the values
        check_labels(split.y, K)
    model = build_model(cfg, K)
    optimizer = build_optimizer(cfg, model)
    xp = model.xp
    from .tiers import fast_enabled
    fast_enabled(xp)                               # MINSWIN_FAST read now, not at step one
    fill = -ds.mean / ds.std                       # a black pixel after normalisation (3,)
    slices = batch_slices(len(ds.train.y), cfg.batch_size)
    steps_per_epoch = len(slices)

    last_path, best_path = os.path.join(out, "last.safetensors"), \
        os.path.join(out, "best.safetensors")
    # the state of the run: where it is, what it has seen, what it has kept
    run = dict(epoch=0, batch=0, step=0, sums=[0.0, 0, 0], best=None, best_epoch=None,
               history={"epochs": [], "step_loss": []}, time_s=0.0)
    # the checkpoint this run may name in its messages: one it wrote, or the one it resumed
    written = {"last": None}
    if ckpt:
        model_state, opt_state, meta_in = ckpt
        try:
            _check_position(meta_in, steps_per_epoch)
            _check_run_state(meta_in)
            # a run goes on only from finite weights and moments: no opt-out to advise here
            for what, state in (("weights are", model_state), ("optimiser state is", opt_state)):
                problems = nonfinite_problems(state)
                if problems:
                    raise ValueError(f"the {what} not finite: " + "; ".join(problems))
            model.load_state_dict(model_state, strict=True)
            optimizer.load_state_dict(opt_state, prefix=OPT_PREFIX)
            if optimizer.t != meta_in["step"]:
                raise ValueError(f"the optimiser has taken {optimizer.t} steps but the run "
                                 f"{meta_in['step']}")
            _restore_rng(model.rng, meta_in["model_rng"])
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"resume: {resume!r} cannot be continued: "
                             f"{err.args[0] if err.args else type(err).__name__}") from None
        run.update({k: meta_in[k] for k in run})
        if os.path.abspath(resume) == os.path.abspath(last_path):
            written["last"] = last_path
        old = meta_in.get("threads")
        if old is not None and threads is not None and old != threads:
            log(f"warning: {resume} was trained with threads={old}, this run uses "
                f"threads={threads}; BLAS then adds in another order, so the weights will "
                f"differ in the last bits from a run that was never stopped (resume with "
                f"--threads {old} to stay exact)")
        log(f"resumed from {resume}: {where(run, cfg.epochs)}")

    # only now, every check above passed: the folder is made and locked for this run (a
    # second run on it is refused; if this one writes nothing, the folder it made goes again)
    hold(owned_folder(out, "out"))
    check_out_folder(out, resume, meta_in)         # again: another run may have finished there

    def meta(kind):
        return dict(kind=kind, config=cfg.as_dict(), model_config=model.config.as_dict(),
                    classes=list(ds.classes), mean=ds.mean.tolist(), std=ds.std.tolist(),
                    model_rng=_rng_state_to_json(model.rng), threads=threads, **run)

    def save(path, kind):
        try:
            save_training_checkpoint(path, model, optimizer, meta(kind))
        except OSError as err:
            kept = _kept(written["last"], resume)
            raise TrainingFailed(f"{err.args[0] if err.args else err}; training stopped "
                                 f"({where(run, cfg.epochs)}) and {kept}") from None
        if path == last_path:
            written["last"] = last_path

    log(f"training {cfg.model} ({model.num_params():,} parameters, {cfg.dtype}) on "
        f"{cfg.data}: {len(ds.train.y)} train / {len(ds.val.y)} val / {len(ds.test.y)} test "
        f"images of {img_size}x{img_size}, {K} classes; {plural(cfg.epochs, 'epoch')} of "
        f"{plural(steps_per_epoch, 'step')}, batch {cfg.batch_size}, {cfg.optimizer} lr {cfg.lr:g}")

    end_epoch = cfg.epochs if stop_after is None else min(cfg.epochs,
                                                          run["epoch"] + int(stop_after))
    with _StopFlag() as stop:
        while run["epoch"] < end_epoch:
            e = run["epoch"]
            t_epoch = time.perf_counter()
            model.train()
            order = epoch_order(len(ds.train.y), cfg.seed, e)
            bar = _progress(progress, steps_per_epoch, run["batch"], f"epoch {e + 1}/{cfg.epochs}")
            for b in range(run["batch"], steps_per_epoch):
                x, y = train_batch(ds.train, order, *slices[b], seed=cfg.seed, epoch=e, batch=b,
                                   max_shift=cfg.max_shift, fill=fill)
                x = to_backend(x.astype(cfg.dtype), xp)              # (b, H, W, 3)
                y = to_backend(y, xp)                                # (b,)
                lr = lr_at(cfg, run["step"], steps_per_epoch)
                loss_value, correct = train_step(model, optimizer, x, y, lr=lr,
                                                 label_smoothing=cfg.label_smoothing,
                                                 clip_grad=cfg.clip_grad, loss_fn=loss_fn)
                if correct is None:
                    if bar is not None:
                        bar.close()
                    _write_json(os.path.join(out, "history.json"),
                                {"config": cfg.as_dict(), **run["history"], "diverged": True})
                    kept = _kept(written["last"], resume)
                    raise TrainingDiverged(
                        f"loss is {loss_value} at epoch {e + 1}, batch {b + 1}, step "
                        f"{run['step'] + 1} (lr {lr:.3g}): the run has diverged; training "
                        f"stopped and {kept}. Try a smaller lr (--lr) or gradient clipping "
                        f"(--clip-grad)")
                n = int(y.shape[0])
                run["sums"][0] += loss_value * n
                run["sums"][1] += correct
                run["sums"][2] += n
                run["history"]["step_loss"].append(loss_value)
                run["step"] += 1
                run["batch"] = b + 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{run['sums'][0] / run['sums'][2]:.4f}",
                                    acc=f"{100 * run['sums'][1] / run['sums'][2]:.1f}%",
                                    lr=f"{lr:.2e}")
                if stop.requested:
                    if bar is not None:
                        bar.close()
                    run["time_s"] += time.perf_counter() - t_epoch
                    save(last_path, "interrupted")
                    log(f"\ninterrupted: saved {last_path} ({where(run, cfg.epochs)}); "
                        f"continue with: minswin train --resume {last_path}")
                    raise KeyboardInterrupt
            if bar is not None:
                bar.close()
            train_loss = run["sums"][0] / max(run["sums"][2], 1)
            train_acc = run["sums"][1] / max(run["sums"][2], 1)
            val_loss, val_acc, _ = evaluate_split(model, ds.val)
            if not math.isfinite(val_loss):
                _write_json(os.path.join(out, "history.json"),
                            {"config": cfg.as_dict(), **run["history"], "diverged": True})
                raise TrainingDiverged(
                    f"validation loss is {val_loss} after epoch {e + 1}: the run has diverged; "
                    f"training stopped and {_kept(written['last'], resume)}. Try a smaller lr "
                    "(--lr) or gradient clipping (--clip-grad)")
            run["time_s"] += time.perf_counter() - t_epoch
            run["history"]["epochs"].append(dict(
                epoch=e + 1, lr=lr_at(cfg, max(run["step"] - 1, 0), steps_per_epoch),
                train_loss=train_loss, train_acc=train_acc, val_loss=val_loss, val_acc=val_acc,
                time_s=run["time_s"]))
            run.update(epoch=e + 1, batch=0, sums=[0.0, 0, 0])
            improved = run["best"] is None or (val_acc, -val_loss) > tuple(run["best"])
            if improved:
                run["best"], run["best_epoch"] = [val_acc, -val_loss], e + 1
            save(last_path, "last")
            if improved:
                save(best_path, "best")
            log(f"epoch {e + 1:3d}/{cfg.epochs}  lr {run['history']['epochs'][-1]['lr']:.2e}  "
                f"train loss {train_loss:.4f} acc {100 * train_acc:5.1f}%  val loss "
                f"{val_loss:.4f} acc {100 * val_acc:5.1f}%  {run['time_s']:6.1f}s"
                + ("  *best" if improved else ""))

    history = {"config": cfg.as_dict(), "model_config": model.config.as_dict(),
               "num_params": model.num_params(), **run["history"],
               "train_time_s": run["time_s"], "best_epoch": run["best_epoch"]}
    finished = run["epoch"] >= cfg.epochs
    test_loss = test_acc = float("nan")
    if finished:
        # the reported number: the final weights, the end of the cosine schedule. The best-val
        # checkpoint is tested too, for information: with 179 validation images one image is
        # 0.56%, so picking 1 of 70 epochs by validation accuracy mostly picks noise
        test_loss, test_acc, _ = evaluate_split(model, ds.test)
        best_test_acc = float("nan")
        if os.path.exists(best_path):
            final_state = {k: to_numpy(v).copy() for k, v in model.state_dict().items()}
            best_state, _, _ = read_training_checkpoint(best_path)
            model.load_state_dict(best_state, strict=True)
            _, best_test_acc, _ = evaluate_split(model, ds.test)
            model.load_state_dict(final_state, strict=True)
        tested = math.isfinite(best_test_acc)           # None in JSON, which has no NaN
        history.update(test_loss=test_loss, test_acc=test_acc,
                       best_val_test_acc=best_test_acc if tested else None,
                       wall_time_s=time.perf_counter() - t_start)
    diverged = finished and not math.isfinite(test_loss)
    if diverged:
        history["diverged"] = True
    try:
        _write_json(os.path.join(out, "history.json"), history)
        if plots and history["epochs"]:
            plot_history(history, os.path.join(out, "curves.png"))
    except OSError as err:
        raise TrainingFailed(
            f"{err.args[0] if err.args else err}; the run's checkpoints are in {out}"
            + (f" (test accuracy: {100 * test_acc:.1f}%)" if finished else "")) from None
    if diverged:
        raise TrainingDiverged(f"test loss is {test_loss} with the final weights: the run has "
                               f"diverged; its files are in {out}. Try a smaller lr (--lr) or "
                               "gradient clipping (--clip-grad)")
    if finished:
        # resumed into a new folder, a best epoch from before the resume has its checkpoint in
        # the old folder: say so rather than print a test accuracy of nan
        best_test = (f"{os.path.basename(best_path)}, test accuracy "
                     f"{100 * best_test_acc:.1f}%" if tested
                     else f"its checkpoint is not in {out}, so it was not tested")
        log(f"best val epoch {run['best_epoch']} (val acc {100 * run['best'][0]:.1f}%): "
            f"{best_test}; training time {run['time_s']:.1f}s; files in {out}")
        log(f"the final weights ({os.path.basename(last_path)}, epoch {run['epoch']}): "
            f"test accuracy: {100 * test_acc:.1f}%")
    else:
        log(f"stopped {where(run, cfg.epochs)}; continue with: "
            f"minswin train --resume {last_path}")
    return TrainResult(test_acc, test_loss, history, out, best_path, last_path, model, cfg,
                       finished)


def plural(n, word):
    """plural(1, 'epoch') -> '1 epoch', plural(2, 'epoch') -> '2 epochs'."""
    return f"{n} {word}{'' if n == 1 else 's'}"


class blas_threads:
    """Inside a `with`: n threads for BLAS (threadpoolctl, which comes with scikit-learn) and
    for minswin's own row blocks (minswin.parallel). n=None changes nothing; without
    threadpoolctl only the row blocks are limited."""

    def __init__(self, n):
        self.n = None if n is None else check_positive_int("threads", n)
        self.ctx, self.before = None, None

    def __enter__(self):
        if self.n is None:
            return self
        from . import parallel
        self.before = parallel.num_threads()
        parallel.set_num_threads(self.n)
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            return self
        try:
            self.ctx = threadpool_limits(limits=self.n, user_api="blas")
        except BaseException:
            parallel.set_num_threads(self.before)
            raise
        return self

    def __exit__(self, *exc):
        try:
            if self.ctx is not None:
                self.ctx.__exit__(*exc)
        finally:
            if self.before is not None:
                from . import parallel
                parallel.set_num_threads(self.before)
        return False


def _progress(enabled, total, initial, desc):
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, desc=desc, leave=False, dynamic_ncols=True)
