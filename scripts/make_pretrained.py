"""Write the weights file minswin ships (minswin/weights/NAME.safetensors) from a training run.

    minswin train --out runs/digits                 # the default recipe, seed 0
    python scripts/make_pretrained.py runs/digits minswin/weights/swin_digits.safetensors

    minswin train --model swinv2_digits --out runs/swinv2_digits     # the same, Swin V2 blocks
    python scripts/make_pretrained.py runs/swinv2_digits minswin/weights/swinv2_digits.safetensors

It keeps the final weights of the run (`last.safetensors`: the weights whose test accuracy
`minswin train` printed), drops the optimiser state, evaluates them on the test split again,
and stores in the metadata the recipe, that accuracy, and the command above. The name is the
run's model config (swin_digits, swinv2_digits), one of those minswin ships.
"""
import argparse
import json
import os
import sys

from minswin.checkpoint import save_checkpoint
from minswin.training import (
    META_KEY,
    build_model,
    evaluate_split,
    load_data,
    make_config,
    read_training_checkpoint,
)

# the command that reproduces each shipped file, stored in its metadata
COMMANDS = {
    "swin_digits": "minswin train --out runs/digits && python scripts/make_pretrained.py "
                   "runs/digits minswin/weights/swin_digits.safetensors",
    "swinv2_digits": "minswin train --model swinv2_digits --out runs/swinv2_digits && python "
                     "scripts/make_pretrained.py runs/swinv2_digits "
                     "minswin/weights/swinv2_digits.safetensors",
}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="the --out folder of a finished `minswin train` run")
    p.add_argument("out", help="the .safetensors file to write")
    args = p.parse_args(argv)
    model_state, _, meta = read_training_checkpoint(os.path.join(args.run, "last.safetensors"))
    cfg = make_config(meta["config"])
    name = cfg.model
    if name not in COMMANDS:
        sys.exit(f"{args.run}: a run of {name!r}; minswin ships {sorted(COMMANDS)}")
    if meta["epoch"] != cfg.epochs:
        sys.exit(f"{args.run}: the run stopped at epoch {meta['epoch']} of {cfg.epochs}")
    with open(os.path.join(args.run, "history.json"), encoding="utf-8") as f:
        history = json.load(f)
    model = build_model(cfg, len(meta["classes"]))
    model.load_state_dict(model_state, strict=True)
    ds = load_data(cfg, model.config.img_size, meta["mean"], meta["std"])
    _, acc, _ = evaluate_split(model, ds.test)
    if abs(acc - history["test_acc"]) > 1e-9:
        sys.exit(f"test accuracy {acc} differs from the run's {history['test_acc']}")
    first = history["epochs"][0]
    keep = {k: meta[k] for k in ("config", "model_config", "classes", "mean", "std", "epoch")}
    keep.update(kind="pretrained", first_epoch={k: first[k] for k in
                                                ("train_loss", "val_loss", "val_acc")},
                train_time_s=history["train_time_s"])
    save_checkpoint(args.out, model.state_dict(), {
        "name": name, "recipe": json.dumps(cfg.as_dict()), "test_accuracy": repr(acc),
        "test_images": str(len(ds.test.y)), "command": COMMANDS[name], META_KEY: json.dumps(keep)})
    print(f"wrote {args.out}: {name}, test accuracy {100 * acc:.2f}% on "
          f"{len(ds.test.y)} images, {os.path.getsize(args.out):,} bytes")


if __name__ == "__main__":
    main()
