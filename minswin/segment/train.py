"""Training a Swin segmenter on digit canvases: `minswin train --task segment`.

The run is classification's (minswin/training.py) with another model, data and metric: the
same refusals (an `out` that holds a run, a resume that would change the config), the same
atomic checkpoints (`last.safetensors` each epoch, `best.safetensors` on the best val mean
IoU) with the weights, AdamW's state and the run's position, the same Ctrl-C (finish the step,
save, say how to resume), the same stop on a NaN/Inf loss (the last good checkpoint kept), and
history.json + curves.png. Those pieces (check_out_folder, save/read_training_checkpoint,
_StopFlag, blas_threads, where, _kept, TrainingDiverged) are imported from training.py; the
epoch loop around them is written out again here for pixels and IoU (one loop for both tasks
is a follow-up, once training.py's own changes have settled).

Files in `out`: last.safetensors, best.safetensors, history.json, curves.png.
"""
import contextlib
import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass

import numpy as np

from ..atomic import owned_folder, write_atomically
from ..backend import get_xp, to_backend, to_numpy
from ..checkpoint import nonfinite_problems
from ..checks import check_positive_int
from ..data import batch_slices, epoch_order
from ..grad_mode import no_grad
from ..optim import clip_grad_norm, create_optimizer
from ..training import (
    OPT_PREFIX,
    TrainingDiverged,
    TrainingFailed,
    _kept,
    _progress,
    _restore_rng,
    _rng_state_to_json,
    _StopFlag,
    _write_json,
    blas_threads,
    check_out_folder,
    lr_at as classify_lr_at,
    read_training_checkpoint,
    save_training_checkpoint,
    where,
)
from .canvases import load_canvases
from .metrics import confusion, iou_per_class, pixel_cross_entropy, pixel_cross_entropy_backward
from .model import create_segmenter

TASK = "segment"                    # the metadata's `task`: classification has none


@dataclass(frozen=True)
class SegmentConfig:
    """Everything that defines a segmentation run."""
    model: str = "swin_canvas"      # the backbone's config name
    head: str = "fpn"               # "fpn" (every stage) or "last" (the last stage only)
    head_dim: int = 32              # D, the width of the head's projections
    backbone_init: str = "swin_digits"   # shipped weights that start the backbone ("": none)
    epochs: int = 8
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 0.5
    min_lr: float = 1e-5
    clip_grad: float = 5.0
    n_train: int = 2000             # canvases
    n_val: int = 200
    n_test: int = 300
    seed: int = 0
    split_seed: int = 0
    dtype: str = "float32"

    def as_dict(self):
        return dataclasses.asdict(self)


SEGMENT_CONFIGS = {
    "canvas": SegmentConfig(),
    "canvas_last": SegmentConfig(head="last"),
    # seconds, for tests and the tutorial's small mode
    "canvas_tiny": SegmentConfig(epochs=1, n_train=16, n_val=8, n_test=8, batch_size=8),
}
RESUME_MAY_CHANGE = ("epochs",)
META_FOR_RESUME = ("config", "classes", "mean", "std", "epoch", "batch", "step", "model_rng",
                   "best", "best_epoch", "history", "time_s", "sums")


def make_segment_config(config="canvas", **overrides):
    """A SegmentConfig from a name, a SegmentConfig or a dict, fields overridden (None: kept)."""
    if isinstance(config, SegmentConfig):
        base = config
    elif isinstance(config, dict):
        known = {f.name for f in dataclasses.fields(SegmentConfig)}
        bad = sorted(set(config) - known)
        if bad:
            raise ValueError(f"config: unknown segment config field(s) {bad}")
        base = SegmentConfig(**config)
    elif config in SEGMENT_CONFIGS:
        base = SEGMENT_CONFIGS[config]
    else:
        raise ValueError(f"config: expected one of {sorted(SEGMENT_CONFIGS)}, got {config!r}")
    known = {f.name for f in dataclasses.fields(SegmentConfig)}
    bad = sorted(set(overrides) - known)
    if bad:
        raise ValueError(f"overrides: unknown segment config field(s) {bad}; known: "
                         f"{sorted(known)}")
    cfg = dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})
    for name in ("epochs", "batch_size", "head_dim", "n_train", "n_val", "n_test"):
        check_positive_int(name, getattr(cfg, name))
    if cfg.head not in ("fpn", "last"):
        raise ValueError(f"head: expected 'fpn' or 'last', got {cfg.head!r}")
    if not (isinstance(cfg.lr, (int, float)) and 0 < cfg.lr < float("inf")):
        raise ValueError(f"lr: expected a positive number, got {cfg.lr!r}")
    if cfg.batch_size > cfg.n_train:
        raise ValueError(f"batch_size: expected at most n_train={cfg.n_train} canvases, got "
                         f"{cfg.batch_size}")
    if cfg.dtype not in ("float32", "float64"):
        raise ValueError(f"dtype: expected 'float32' or 'float64', got {cfg.dtype!r}")
    return cfg


def build_segmenter(cfg):
    return create_segmenter(cfg.model, head=cfg.head, dim=cfg.head_dim, seed=cfg.seed,
                            dtype=cfg.dtype, backbone_init=cfg.backbone_init)


def segment_data(cfg, mean=None, std=None):
    """The canvases; normalised as the backbone's pre-training data was when it starts from
    shipped weights (its patch embedding expects those numbers), else by their own stats."""
    if mean is None and cfg.backbone_init:
        from ..training import read_training_checkpoint
        from ..weights import pretrained_path
        _, _, meta = read_training_checkpoint(pretrained_path(cfg.backbone_init))
        mean, std = meta["mean"], meta["std"]
    return load_canvases(cfg.n_train, cfg.n_val, cfg.n_test, size=_img_size(cfg),
                         split_seed=cfg.split_seed, seed=cfg.seed, mean=mean, std=std)


def _img_size(cfg):
    from ..configs import get_config
    size = get_config(cfg.model).img_size
    if not isinstance(size, int):
        raise ValueError(f"model: the canvases are square; {cfg.model!r} is built for {size}")
    return size


def segment_step(model, optimizer, x, y, *, lr, clip_grad):
    """Forward, per-pixel loss, backward, (clip), update: the loss as a float, or NaN/Inf
    without touching the weights."""
    xp = get_xp(x)
    model.zero_grad()
    logits = model.forward(x)                                     # (B, H, W, K)
    loss, cache = pixel_cross_entropy(logits, y, check_values=False)
    model.backward(pixel_cross_entropy_backward(1.0, cache, logits.shape))
    loss = float(to_numpy(xp.asarray(loss, dtype=xp.float64)))
    if not math.isfinite(loss):
        return loss
    if clip_grad:
        clip_grad_norm(model.grads, clip_grad)
    optimizer.lr = lr
    optimizer.step(model.grads)
    return loss


def evaluate_segmenter(model, split, batch_size=64):
    """(mean loss, confusion matrix (K, K), predictions (N, H, W)) in eval mode."""
    model.eval()
    xp, K = model.xp, model.num_classes
    total, cm, preds = 0.0, np.zeros((K, K), np.int64), []
    for start, stop in batch_slices(len(split.y), batch_size):
        x = to_backend(split.x[start:stop].astype(model.dtype), xp)
        y = to_backend(split.y[start:stop], xp)
        with no_grad():                                    # no backward: keep no caches
            logits = model.forward(x)
        loss, _ = pixel_cross_entropy(logits, y)
        total += float(to_numpy(loss)) * (stop - start)
        pred = to_numpy(logits.argmax(axis=-1))
        cm += confusion(pred, split.y[start:stop], K)
        preds.append(pred)
    return total / max(len(split.y), 1), cm, np.concatenate(preds)


def plot_segment_history(history, path):
    from matplotlib.figure import Figure
    ep = [e["epoch"] for e in history["epochs"]]
    fig = Figure(figsize=(10, 3.6))
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(ep, [e["train_loss"] for e in history["epochs"]], "o-", label="train")
    ax1.plot(ep, [e["val_loss"] for e in history["epochs"]], "s-", label="val")
    ax1.set(xlabel="epoch", ylabel="per-pixel cross-entropy", title="loss")
    ax2.plot(ep, [100 * e["val_miou"] for e in history["epochs"]], "s-", color="C1",
             label="val")
    ax2.set(xlabel="epoch", ylabel="mean IoU (%)", title="mean IoU over the 11 classes")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))


def train_segmenter(config="canvas", *, out="runs/segment", resume=None, stop_after=None,
                    progress=True, plots=True, log=print, threads=1, **overrides):
    """Train a segmenter on digit canvases; returns a dict with test_miou, test_iou (per class),
    history, model, paths. Safety as `minswin.training.train` (module docstring)."""
    if stop_after is not None:
        check_positive_int("stop_after", stop_after)
    with blas_threads(threads), contextlib.ExitStack() as held:
        return _train(config, out, resume, stop_after, progress, plots, log, threads,
                      overrides, held.enter_context)


def _resolve(config, resume, overrides):
    if resume is None:
        return make_segment_config(config, **overrides), None
    model_state, opt_state, meta = read_training_checkpoint(resume, need=META_FOR_RESUME)
    if meta.get("task") != TASK:
        raise ValueError(f"resume: {resume!r} is a classification run; continue it with "
                         "`minswin train --resume` without --task segment")
    try:
        saved = make_segment_config(meta["config"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"resume: the config in {resume!r} cannot be used: {err}") from None
    given = make_segment_config(saved, **overrides)
    for f in dataclasses.fields(SegmentConfig):
        if f.name not in RESUME_MAY_CHANGE and getattr(given, f.name) != getattr(saved, f.name):
            raise ValueError(f"{f.name}: cannot change when resuming (the checkpoint was "
                             f"trained with {getattr(saved, f.name)!r}, got "
                             f"{getattr(given, f.name)!r})")
    if given.epochs < meta["epoch"]:
        raise ValueError(f"epochs: the checkpoint has already done {meta['epoch']} epochs, got "
                         f"epochs={given.epochs}")
    return given, (model_state, opt_state, meta)


def _train(config, out, resume, stop_after, progress, plots, log, threads, overrides, hold):
    t_start = time.perf_counter()
    check_out_folder(out, resume)
    cfg, ckpt = _resolve(config, resume, overrides)
    meta_in = ckpt[2] if ckpt else None
    ds = segment_data(cfg, *((meta_in["mean"], meta_in["std"]) if ckpt else ()))
    model = build_segmenter(cfg)
    optimizer = create_optimizer("adamw", model.params, lr=cfg.lr,
                                 weight_decay=cfg.weight_decay)
    xp = model.xp
    slices = batch_slices(cfg.n_train, cfg.batch_size)
    spe = len(slices)

    def lr_at(step):                               # classification's warm-up and schedule
        return classify_lr_at(cfg, step, spe)

    last_path, best_path = os.path.join(out, "last.safetensors"), \
        os.path.join(out, "best.safetensors")
    run = dict(epoch=0, batch=0, step=0, sums=[0.0, 0], best=None, best_epoch=None,
               history={"epochs": [], "step_loss": []}, time_s=0.0)
    written = {"last": None}
    if ckpt:
        model_state, opt_state, _ = ckpt
        try:
            if meta_in["step"] != meta_in["epoch"] * spe + meta_in["batch"]:
                raise ValueError("its epoch, batch and step do not fit this run's epochs")
            for what, state in (("weights are", model_state), ("optimiser state is", opt_state)):
                problems = nonfinite_problems(state)
                if problems:
                    raise ValueError(f"the {what} not finite: " + "; ".join(problems))
            model.load_state_dict(model_state, strict=True)
            optimizer.load_state_dict(opt_state, prefix=OPT_PREFIX)
            _restore_rng(model.rng, meta_in["model_rng"])
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"resume: {resume!r} cannot be continued: "
                             f"{err.args[0] if err.args else type(err).__name__}") from None
        run.update({k: meta_in[k] for k in run})
        if os.path.abspath(resume) == os.path.abspath(last_path):
            written["last"] = last_path
        log(f"resumed from {resume}: {where(run, cfg.epochs)}")
    # only now, every check above passed: the folder is made and locked for this run, as
    # classification's (a second run on it is refused; a run that writes nothing removes it)
    hold(owned_folder(out, "out"))
    check_out_folder(out, resume, meta_in)         # again: another run may have finished there

    def meta(kind):
        return dict(kind=kind, task=TASK, config=cfg.as_dict(),
                    model_config=model.config.as_dict(), classes=list(ds.classes),
                    mean=ds.mean.tolist(), std=ds.std.tolist(),
                    model_rng=_rng_state_to_json(model.rng), threads=threads, **run)

    def save(path, kind):
        try:
            save_training_checkpoint(path, model, optimizer, meta(kind))
        except OSError as err:
            raise TrainingFailed(f"{err.args[0] if err.args else err}; training stopped "
                                 f"({where(run, cfg.epochs)}) and "
                                 f"{_kept(written['last'], resume)}") from None
        if path == last_path:
            written["last"] = last_path

    S = _img_size(cfg)
    log(f"training {cfg.model} + {cfg.head} head ({model.num_params():,} parameters) on "
        f"{cfg.n_train} digit canvases of {S}x{S} ({len(ds.classes)} classes); {cfg.epochs} "
        f"epochs of {spe} steps, batch {cfg.batch_size}, adamw lr {cfg.lr:g}")
    end_epoch = cfg.epochs if stop_after is None else min(cfg.epochs,
                                                          run["epoch"] + int(stop_after))
    with _StopFlag() as stop:
        while run["epoch"] < end_epoch:
            e = run["epoch"]
            t_epoch = time.perf_counter()
            model.train()
            order = epoch_order(cfg.n_train, cfg.seed, e)
            bar = _progress(progress, spe, run["batch"], f"epoch {e + 1}/{cfg.epochs}")
            for b in range(run["batch"], spe):
                idx = order[slice(*slices[b])]
                x = to_backend(ds.train.x[idx].astype(cfg.dtype), xp)     # (b, S, S, 3)
                y = to_backend(ds.train.y[idx], xp)                        # (b, S, S)
                lr = lr_at(run["step"])
                loss = segment_step(model, optimizer, x, y, lr=lr, clip_grad=cfg.clip_grad)
                if not math.isfinite(loss):
                    if bar is not None:
                        bar.close()
                    _write_json(os.path.join(out, "history.json"),
                                {"config": cfg.as_dict(), **run["history"], "diverged": True})
                    raise TrainingDiverged(
                        f"loss is {loss} at epoch {e + 1}, batch {b + 1}, step "
                        f"{run['step'] + 1} (lr {lr:.3g}); training stopped and "
                        f"{_kept(written['last'], resume)}. Try a smaller lr (--lr)")
                run["sums"][0] += loss * len(idx)
                run["sums"][1] += len(idx)
                run["history"]["step_loss"].append(loss)
                run["step"] += 1
                run["batch"] = b + 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{run['sums'][0] / run['sums'][1]:.4f}")
                if stop.requested:
                    if bar is not None:
                        bar.close()
                    run["time_s"] += time.perf_counter() - t_epoch
                    save(last_path, "interrupted")
                    log(f"\ninterrupted: saved {last_path} ({where(run, cfg.epochs)}); "
                        f"continue with: minswin train --task segment --resume {last_path}")
                    raise KeyboardInterrupt
            if bar is not None:
                bar.close()
            train_loss = run["sums"][0] / max(run["sums"][1], 1)
            val_loss, cm, _ = evaluate_segmenter(model, ds.val)
            val_miou = float(np.nanmean(iou_per_class(cm)))
            run["time_s"] += time.perf_counter() - t_epoch
            run["history"]["epochs"].append(dict(
                epoch=e + 1, lr=lr_at(max(run["step"] - 1, 0)), train_loss=train_loss,
                val_loss=val_loss, val_miou=val_miou, time_s=run["time_s"]))
            run.update(epoch=e + 1, batch=0, sums=[0.0, 0])
            improved = run["best"] is None or (val_miou, -val_loss) > tuple(run["best"])
            if improved:
                run["best"], run["best_epoch"] = [val_miou, -val_loss], e + 1
            save(last_path, "last")
            if improved:
                save(best_path, "best")
            log(f"epoch {e + 1:3d}/{cfg.epochs}  train loss {train_loss:.4f}  val loss "
                f"{val_loss:.4f} mIoU {100 * val_miou:5.1f}%  {run['time_s']:6.1f}s"
                + ("  *best" if improved else ""))

    history = {"task": TASK, "config": cfg.as_dict(), "model_config": model.config.as_dict(),
               "num_params": model.num_params(), **run["history"],
               "train_time_s": run["time_s"], "best_epoch": run["best_epoch"]}
    finished = run["epoch"] >= cfg.epochs
    test_iou = None
    if finished:
        test_loss, cm, _ = evaluate_segmenter(model, ds.test)
        test_iou = iou_per_class(cm)
        history.update(test_loss=test_loss, test_miou=float(np.nanmean(test_iou)),
                       test_iou=[None if np.isnan(v) else float(v) for v in test_iou],
                       wall_time_s=time.perf_counter() - t_start)
    try:
        _write_json(os.path.join(out, "history.json"), history)
        if plots and history["epochs"]:
            plot_segment_history(history, os.path.join(out, "curves.png"))
    except OSError as err:
        raise TrainingFailed(f"{err.args[0] if err.args else err}; the run's checkpoints are "
                             f"in {out}") from None
    if finished:
        log(f"training time {run['time_s']:.1f}s; files in {out}")
        log(f"test mean IoU: {100 * history['test_miou']:.1f}%")
    else:
        log(f"stopped {where(run, cfg.epochs)}; continue with: minswin train --task segment "
            f"--resume {last_path}")
    return dict(test_miou=history.get("test_miou"), test_iou=test_iou, history=history,
                model=model, config=cfg, out=out, last_path=last_path, best_path=best_path,
                finished=finished)


def is_segment_checkpoint(path):
    """True for a checkpoint written by `minswin train --task segment`."""
    from ..checkpoint import load_checkpoint
    from ..training import META_KEY
    try:
        _, metadata = load_checkpoint(path, with_metadata=True)
        meta = json.loads((metadata or {}).get(META_KEY, "{}"))
    except (OSError, ValueError, TypeError):
        return False                        # the classification run's checks say what is wrong
    return isinstance(meta, dict) and meta.get("task") == TASK


def segmenter_from_checkpoint(path, *, allow_nonfinite=False):
    """(segmenter with the checkpoint's weights, meta) from a `--task segment` checkpoint."""
    model_state, _, meta = read_training_checkpoint(path)
    if meta.get("task") != TASK:
        raise ValueError(f"checkpoint: {path!r} is not a segmentation run (no task "
                         f"{TASK!r} in its metadata)")
    cfg = make_segment_config(meta["config"])
    model = build_segmenter(cfg)
    model.load_state_dict(model_state, strict=True, allow_nonfinite=allow_nonfinite)
    return model.eval(), meta


