"""`minswin train --task segment`: the segmentation run from the command line (the parser is
minswin/cli/train.py's; this reads the flags that apply and refuses those that do not)."""
import os
import sys

# flags of `minswin train` and the SegmentConfig field each sets
FLAGS = {"model": "model", "head": "head", "dtype": "dtype", "epochs": "epochs",
         "batch_size": "batch_size", "lr": "lr", "weight_decay": "weight_decay",
         "warmup_epochs": "warmup_epochs", "min_lr": "min_lr", "clip_grad": "clip_grad",
         "seed": "seed"}
# classification flags with no meaning here
NOT_HERE = ("data", "img_size", "patch_size", "embed_dim", "depths", "num_heads",
            "window_size", "drop_path_rate", "init", "optimizer", "label_smoothing",
            "max_shift", "limit")


def run_segment(args, CliError):
    from ..training import TrainingFailed
    from .train import SEGMENT_CONFIGS, train_segmenter
    for k in NOT_HERE:
        if getattr(args, k, None) is not None:
            flag = "--" + k.replace("_", "-")
            raise CliError(f"{flag}: not used by --task segment (the canvases and the "
                           "swin_canvas backbone are fixed; see --config, --head, --epochs, "
                           "--lr, --batch-size)")
    if args.resume and args.config:
        raise CliError("--config: not allowed with --resume (the config comes from the "
                       "checkpoint)")
    if args.resume and not os.path.exists(args.resume):
        raise CliError(f"--resume: no such checkpoint {args.resume!r}")
    config = args.config or "canvas"
    if config not in SEGMENT_CONFIGS:
        raise CliError(f"--config: with --task segment expected one of "
                       f"{sorted(SEGMENT_CONFIGS)}, got {config!r}")
    out = args.out or (os.path.dirname(os.path.abspath(args.resume)) if args.resume
                       else f"runs/{config}")
    overrides = {field: getattr(args, flag) for flag, field in FLAGS.items()}
    try:
        train_segmenter(None if args.resume else config, out=out, resume=args.resume,
                        stop_after=args.stop_after, progress=not args.no_progress,
                        threads=1 if args.threads is None else args.threads, **overrides)
    except TrainingFailed as err:
        print(f"minswin train: {err}", file=sys.stderr)
        return 1
    return 0
