"""`minswin train`: train a small Swin from scratch (the hand-written backward) and test it.

    minswin train                                  # the digits config, files in runs/digits
    minswin train --epochs 5 --lr 1e-3 --out runs/try
    minswin train --epochs 30 --stop-after 10      # 10 of 30 epochs, then:
    minswin train --resume runs/digits/last.safetensors
    minswin train --task segment                   # digit canvases, pixel by pixel (tutorial 12)
"""
import argparse

from .errors import CliError


def _ints(text):
    """'2,2' -> (2, 2)"""
    try:
        return tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(                   # argparse prints this message
            f"expected comma-separated integers such as 2,2, got {text!r}") from None


def _show(value):
    """A default as typed on the command line: (2, 2) -> 2,2."""
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return str(value)


def add_parser(sub):
    from ..configs import get_config
    from ..segment.train import SEGMENT_CONFIGS
    from ..training import TRAIN_CONFIGS
    p = sub.add_parser(
        "train", help="train a small Swin from scratch on the digits or your own images",
        description="Train a Swin from scratch with the hand-written backward pass. With no "
                    "options: the 'digits' config (scikit-learn's 8x8 digits, no download). "
                    "Ends by printing 'test accuracy: NN.N%'. Writes last/best checkpoints "
                    "(.safetensors, with the optimiser state), history.json and curves.png.")
    p.add_argument("--task", default="classify", choices=("classify", "segment"),
                   help="classify images (default), or segment digit canvases pixel by pixel "
                        "with a Swin backbone and a feature-pyramid head (tutorial 12)")
    p.add_argument("--config", default=None,
                   choices=sorted(TRAIN_CONFIGS) + sorted(SEGMENT_CONFIGS),
                   help="training config by name (default: digits; with --task segment: "
                        f"canvas, one of {', '.join(sorted(SEGMENT_CONFIGS))})")
    p.add_argument("--head", default=None, choices=("fpn", "last"),
                   help="--task segment: the pyramid head on every stage (fpn, default) or a "
                        "head on the last stage only")
    p.add_argument("--data", default=None,
                   help="'digits', a folder with one sub-folder of images per class, or an "
                        ".npz with x (N,H,W,3) and y (N,) (default: the config's; digits: "
                        "digits)")
    d = TRAIN_CONFIGS["digits"]                            # the defaults --help shows
    m = get_config(d.model)

    def of_config(value):
        return f"(default: the config's; digits: {_show(value)})"
    g = p.add_argument_group("model (default: the config's model, with its fields)")
    g.add_argument("--model", default=None,
                   help="model config name, e.g. swin_digits, swinv2_digits, swin_micro (see "
                        f"minswin.CONFIGS) {of_config(d.model)}")
    g.add_argument("--img-size", type=int, default=None,
                   help=f"side of the square input images in pixels {of_config(m.img_size)}")
    g.add_argument("--patch-size", type=int, default=None,
                   help=f"side of the patches the image is cut into {of_config(m.patch_size)}")
    g.add_argument("--embed-dim", type=int, default=None,
                   help=f"width C of stage 1 (doubles each stage) {of_config(m.embed_dim)}")
    g.add_argument("--depths", type=_ints, default=None,
                   help=f"blocks per stage, e.g. 2,2 {of_config(m.depths)}")
    g.add_argument("--num-heads", type=_ints, default=None,
                   help=f"attention heads per stage, e.g. 2,4 {of_config(m.num_heads)}")
    g.add_argument("--window-size", type=int, default=None,
                   help=f"window side M in tokens {of_config(m.window_size)}")
    g.add_argument("--drop-path-rate", type=float, default=None,
                   help=f"stochastic depth of the last block {of_config(m.drop_path_rate)}")
    g.add_argument("--dtype", default=None, choices=("float32", "float64"),
                   help=f"floating-point type of weights and images {of_config(d.dtype)}")
    g.add_argument("--init", default=None, choices=("lecun", "official"),
                   help="block linears: std 1/sqrt(fan_in) or the official .02 "
                        f"{of_config(d.init)}")
    o = p.add_argument_group("optimisation")
    o.add_argument("--epochs", type=int, default=None,
                   help=f"passes over the training images {of_config(d.epochs)}")
    o.add_argument("--batch-size", type=int, default=None,
                   help=f"images per step {of_config(d.batch_size)}")
    o.add_argument("--optimizer", default=None, choices=("adamw", "sgd"),
                   help=f"the update rule {of_config(d.optimizer)}")
    o.add_argument("--lr", type=float, default=None,
                   help=f"peak learning rate {of_config(d.lr)}")
    o.add_argument("--weight-decay", type=float, default=None,
                   help=f"decoupled weight decay {of_config(d.weight_decay)}")
    o.add_argument("--warmup-epochs", type=float, default=None,
                   help="epochs of linear warm-up before the cosine decay, at most a "
                        f"fraction of the run {of_config(d.warmup_epochs)}")
    o.add_argument("--min-lr", type=float, default=None,
                   help=f"learning rate at the end of the cosine {of_config(d.min_lr)}")
    o.add_argument("--label-smoothing", type=float, default=None,
                   help=f"weight moved from the target to the other classes "
                        f"{of_config(d.label_smoothing)}")
    o.add_argument("--clip-grad", type=float, default=None,
                   help=f"max gradient norm, 0 = off {of_config(d.clip_grad)}")
    o.add_argument("--max-shift", type=int, default=None,
                   help=f"random shift augmentation in pixels, 0 = off {of_config(d.max_shift)}")
    o.add_argument("--seed", type=int, default=None,
                   help=f"seed of the initial weights, order and shifts {of_config(d.seed)}")
    o.add_argument("--limit", type=int, default=None,
                   help="use only the first N training images, for quick checks (default: "
                        "all; digits_tiny: 256)")
    r = p.add_argument_group("run")
    r.add_argument("--out", default=None,
                   help="output folder (default: runs/<config>); a folder that holds another "
                        "run is refused, never overwritten")
    r.add_argument("--resume", default=None, metavar="CHECKPOINT",
                   help="continue from a last.safetensors (only --epochs may change) (default: "
                        "a new run)")
    r.add_argument("--stop-after", type=int, default=None, metavar="N",
                   help="stop after N epochs of this call (the schedule still follows "
                        "--epochs); continue later with --resume (default: run to the end)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--threads", type=int, default=None,
                   help="BLAS threads while training (default: 1; small matrices run "
                        "faster on one thread, and much faster when cores are shared)")
    p.set_defaults(func=run)


MODEL_FLAGS = ("img_size", "patch_size", "embed_dim", "depths", "num_heads", "window_size",
               "drop_path_rate")
TRAIN_FLAGS = ("data", "model", "dtype", "epochs", "batch_size", "optimizer", "lr",
               "weight_decay", "warmup_epochs", "min_lr", "label_smoothing", "clip_grad",
               "max_shift", "seed", "limit", "init")


def run(args):
    import os

    from ..training import TrainingFailed, train
    if args.task == "segment":
        from ..segment.cli import run_segment
        return run_segment(args, CliError)
    if args.head is not None:
        raise CliError("--head: only with --task segment")
    if args.resume and os.path.exists(args.resume):
        from ..segment.train import is_segment_checkpoint
        if is_segment_checkpoint(args.resume):
            raise CliError(f"--resume: {args.resume!r} is a segmentation run; continue it "
                           "with --task segment")
    from ..segment.train import SEGMENT_CONFIGS
    if args.config in SEGMENT_CONFIGS:
        raise CliError(f"--config: {args.config!r} is a --task segment config")
    if args.resume and args.config:
        raise CliError("--config: not allowed with --resume (the config comes from the "
                       "checkpoint)")
    if args.resume and not os.path.exists(args.resume):
        raise CliError(f"--resume: no such checkpoint {args.resume!r}")
    config = args.config or "digits"
    out = args.out or (os.path.dirname(os.path.abspath(args.resume)) if args.resume
                       else f"runs/{config}")
    overrides = {k: getattr(args, k) for k in TRAIN_FLAGS}
    model_overrides = {k: getattr(args, k) for k in MODEL_FLAGS if getattr(args, k) is not None}
    if model_overrides:
        overrides["model_overrides"] = model_overrides
    try:
        train(None if args.resume else config, out=out, resume=args.resume,
              stop_after=args.stop_after, progress=not args.no_progress,
              threads=1 if args.threads is None else args.threads, **overrides)
    except TrainingFailed as err:           # the run started: what was kept is in the message
        import sys

        from ..checks import escape_controls
        print(f"minswin train: {escape_controls(str(err))}", file=sys.stderr)
        return 1
    return 0
