"""Weights from wherever people get them: `minswin.from_pretrained(path)`.

    model = minswin.from_pretrained("swin-tiny-patch4-window7-224/")   # a downloaded folder
    # transformers Swin v1, 224, window 7, 1000 classes (model.safetensors)
    logits = model.forward(x)            # x (B, 224, 224, 3): channels last, unlike torch
    model.labels[logits[0].argmax()]     # the class names from the folder's config.json

It reads what is on disk and never downloads. Recognised (one entry of FORMATS each):

| folder                          | config.json says                          | key names    |
| ------------------------------- | ----------------------------------------- | ------------ |
| transformers Swin v1            | "model_type": "swin"                      | transformers |
| transformers Swin V2            | "model_type": "swinv2"                    | transformers |
| timm Swin v1                    | "architecture": "swin_tiny_patch4_..."    | timm         |
| timm Swin V2                    | "architecture": "swinv2_tiny_window8_256" | timm         |
| minswin (save_pretrained below) | "model_type": "minswin"                   | official     |

A `.safetensors` file written by minswin (`minswin train`, or save_pretrained) carries its config
in its metadata and loads on its own. timm's `swin_s3_*` and `swinv2_cr_*` are other
architectures and are refused by name.

The config gives the architecture (image size, patch, width, depths, heads, window) and the
labels; the weights load strictly (every tensor used, every parameter filled, index buffers
checked against minswin's and dropped). A folder without a classifier (transformers'
`SwinModel`, timm with `num_classes: 0`) gives a headless model, `num_classes=0`, whose forward
returns the pooled features (B, num_features): transformers' `pooler_output`, timm's
`forward_head(..., pre_logits=True)`.

minswin does no preprocessing: resize, crop and normalise as the folder's
`preprocessor_config.json` (transformers) or `pretrained_cfg` (timm) says, then pass NHWC.
"""
import json
import os
import re
from dataclasses import fields
from typing import Callable, NamedTuple

from .atomic import replace_together
from .checkpoint import load_checkpoint, load_state_dict, save_checkpoint
from .configs import SwinConfig, SwinV2Config

CONFIG_META_KEY = "minswin.config"       # safetensors metadata: the SwinConfig as JSON
LABELS_META_KEY = "minswin.labels"       # safetensors metadata: the class names as JSON

# the weights files a folder may hold, in the order they are looked for
SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.pth")


class Format(NamedTuple):
    """One kind of folder: how to recognise its config.json and turn it into a SwinConfig
    (a SwinV2Config for V2: from_pretrained then builds the V2 model)."""
    name: str                            # "transformers Swin v1"
    matches: Callable                    # config dict -> bool
    read: Callable                       # (config dict, weights dict) -> (SwinConfig, labels)
    keys: str                            # key-name format for load_state_dict (checkpoint.py)


# ---------------------------------------------------------------------------- transformers

def _image_size(name, v):
    """An int or a pair (H, W): transformers' image_size and timm's img_size may be either."""
    if isinstance(v, (list, tuple)):
        if len(v) != 2:
            raise ValueError(f"config.json: {name}: expected an int or a pair (H, W), got {v!r}")
        return tuple(v)
    return v


def _square(name, v):
    """An int, or a pair of equal ints: minswin's sizes are square."""
    if isinstance(v, (list, tuple)):
        if len(v) != 2 or v[0] != v[1]:
            raise ValueError(f"config.json: {name}: minswin needs a square size, got {v!r}")
        v = v[0]
    return v


def _refuse(cfg, checks, where="config.json"):
    """Raise for the first (field, expected, default) the config sets to something else."""
    for field, want, default in checks:
        got = cfg.get(field, default)
        if got != want:
            raise ValueError(f"{where}: {field} is {got!r}; minswin's Swin supports only "
                             f"{want!r}")


def _transformers(cfg, state, version=1):
    """config.json of transformers' SwinConfig (Swinv2Config) -> (SwinConfig, labels)."""
    _refuse(cfg, [("use_absolute_embeddings", False, False), ("qkv_bias", True, True),
                  ("hidden_act", "gelu", "gelu"), ("layer_norm_eps", 1e-5, 1e-5)])
    archs = cfg.get("architectures") or []
    for bad in ("SwinForMaskedImageModeling", "SwinBackbone", "Swinv2ForMaskedImageModeling",
                "Swinv2Backbone"):
        if bad in archs:
            raise ValueError(f"config.json: architectures is {archs}; minswin loads image "
                             "classifiers and base models (Swin[v2]ForImageClassification, "
                             "Swin[v2]Model), not " + bad)
    has_head = any(k.startswith("classifier.") for k in state)
    labels = _id2label(cfg.get("id2label")) if has_head else None
    num_classes = (len(labels) if labels else state["classifier.weight"].shape[0]) \
        if has_head else 0
    v2 = {}
    if version == 2:
        depths = cfg.get("depths", (2, 2, 6, 2))
        pretrained = list(cfg.get("pretrained_window_sizes") or [])
        v2["pretrained_window_sizes"] = None if not any(pretrained) else \
            tuple(pretrained[:len(depths)])               # its default is 4 zeros at any depth
    config = (SwinV2Config if version == 2 else SwinConfig)(
        img_size=_image_size("image_size", cfg.get("image_size", 224)),
        patch_size=_square("patch_size", cfg.get("patch_size", 4)),
        in_chans=cfg.get("num_channels", 3), num_classes=num_classes,
        embed_dim=cfg.get("embed_dim", 96), depths=tuple(cfg.get("depths", (2, 2, 6, 2))),
        num_heads=tuple(cfg.get("num_heads", (3, 6, 12, 24))),
        window_size=cfg.get("window_size", 7), mlp_ratio=cfg.get("mlp_ratio", 4.0),
        drop_path_rate=cfg.get("drop_path_rate", 0.1), **v2)
    return config, labels


# ---------------------------------------------------------------------------- timm

# timm's Swin v1 names: swin_{variant}_patch{P}_window{M}_{size}; the variant gives the widths
TIMM_VARIANTS = {
    "tiny": dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
    "small": dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
    "base": dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
    "large": dict(embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48)),
}
_TIMM_V1 = re.compile(r"swin_(tiny|small|base|large)_patch(\d+)_window(\d+)_(\d+)$")
# V2: swinv2_{variant}_window{M}_{size}, or window{P}to{M}_{s}to{size} for a model fine-tuned
# at window M from one pre-trained at window P (stages 1-3 at P, stage 4 at P/2: timm's defs)
_TIMM_V2 = re.compile(r"swinv2_(tiny|small|base|large)_window(\d+)(?:to(\d+))?_(\d+)"
                      r"(?:to(\d+))?$")
# timm model_args minswin follows, and those that only matter in training
_TIMM_ARGS = {"img_size", "patch_size", "in_chans", "num_classes", "embed_dim", "depths",
              "num_heads", "window_size", "mlp_ratio", "drop_path_rate",
              "pretrained_window_sizes"}
_TIMM_TRAINING_ARGS = {"drop_rate", "proj_drop_rate", "attn_drop_rate", "weight_init"}


def _timm_architecture(cfg):
    arch = cfg.get("architecture")
    return arch.split(".")[0] if isinstance(arch, str) else ""   # drop a ".tag"


def _timm_defaults(arch):
    """(SwinConfig class, fields) that timm's architecture name stands for."""
    m = _TIMM_V1.match(arch)
    if m:
        variant, patch, window, size = m.group(1), *map(int, m.groups()[1:])
        return SwinConfig, dict(TIMM_VARIANTS[variant], patch_size=patch, window_size=window,
                                img_size=size)
    m = _TIMM_V2.match(arch)
    if m:
        variant, w1, w2, s1, s2 = m.groups()
        fields_ = dict(TIMM_VARIANTS[variant], patch_size=4, window_size=int(w2 or w1),
                       img_size=int(s2 or s1))
        if w2:                                             # window{P}to{M}
            fields_["pretrained_window_sizes"] = (int(w1),) * 3 + (int(w1) // 2,)
        return SwinV2Config, fields_
    raise ValueError(f"config.json: architecture {arch!r} is not a timm Swin name minswin "
                     "knows (swin_{tiny,small,base,large}_patch{P}_window{M}_{S}, "
                     "swinv2_{tiny,small,base,large}_window{M}_{S}; swin_s3_* and swinv2_cr_* "
                     "are other architectures)")


def _timm(cfg, state):
    """timm's config.json (architecture + model_args + pretrained_cfg) -> (SwinConfig, labels)."""
    config_class, fields_ = _timm_defaults(_timm_architecture(cfg))
    args = cfg.get("model_args") or {}
    if not isinstance(args, dict):
        raise ValueError(f"config.json: model_args: expected an object, got {_shown(args)}")
    args = dict(args)
    _refuse(args, [("global_pool", "avg", "avg"), ("qkv_bias", True, True),
                   ("always_partition", False, False), ("head_dim", None, None)],
            "config.json model_args")
    args.pop("global_pool", None)
    for k in ("qkv_bias", "always_partition", "head_dim", "strict_img_size",
              "dynamic_img_size", *_TIMM_TRAINING_ARGS):
        args.pop(k, None)
    unknown = sorted(set(args) - _TIMM_ARGS)
    if unknown:
        raise ValueError(f"config.json: model_args {unknown} are timm options minswin does not "
                         "have")
    for k, v in args.items():
        fields_[k] = _image_size(k, v) if k == "img_size" else \
            _square(k, v) if k in ("window_size", "patch_size") else \
            tuple(v) if isinstance(v, list) else v
    num_classes = cfg.get("num_classes", fields_.get("num_classes", 1000))
    fields_["num_classes"] = num_classes
    pretrained = cfg.get("pretrained_cfg") or {}
    if not isinstance(pretrained, dict):
        raise ValueError(f"config.json: pretrained_cfg: expected an object, got "
                         f"{_shown(pretrained)}")
    labels = _check_label_list("config.json: pretrained_cfg.label_names",
                               pretrained.get("label_names")) if num_classes else None
    return config_class(**fields_), labels


# ---------------------------------------------------------------------------- minswin

def _minswin(cfg, state, where="config.json"):
    c = cfg.get("config") or {}
    if not isinstance(c, dict):
        raise ValueError(f"{where}: config: expected an object of SwinConfig fields, got "
                         f"{_shown(c)}")
    c = dict(c)
    config_class = SwinV2Config if "pretrained_window_sizes" in c else SwinConfig
    known = {f.name for f in fields(config_class)}
    bad = sorted(set(c) - known)
    if bad:
        raise ValueError(f"{where}: config has fields {bad} that {config_class.__name__} "
                         "does not know")
    c = {k: tuple(v) if isinstance(v, list) else v for k, v in c.items()}
    return config_class(**c), _check_label_list(f"{where}: labels", cfg.get("labels"))


# ---------------------------------------------------------------------------- labels

def _shown(value, width=60):
    """A value for a message: its type and a short, escaped repr."""
    text = repr(value)
    return f"{type(value).__name__} {text[:width] + '...' if len(text) > width else text}"


def _check_label_list(where, labels):
    """None, or the class names as a list of strings (a string or a list of numbers is not
    one: "abc" would be three classes)."""
    if labels is None:
        return None
    if not isinstance(labels, (list, tuple)) or not all(isinstance(n, str) for n in labels):
        raise ValueError(f"{where}: expected a list of class names (strings), got "
                         f"{_shown(labels)}")
    return list(labels)


def _id2label(id2label):
    """transformers' {"0": name, "1": name, ...} -> [name, ...]; the keys must be exactly the
    class indices 0..n-1 (as JSON writes them) and the names strings. None when absent."""
    if not id2label:
        return None
    where = "config.json: id2label"
    if not isinstance(id2label, dict):
        raise ValueError(f"{where}: expected an object {{\"0\": name, \"1\": name, ...}}, got "
                         f"{_shown(id2label)}")
    want = [str(i) for i in range(len(id2label))]
    if set(id2label) != set(want):
        odd = sorted(set(id2label) - set(want))[:3]
        raise ValueError(f"{where}: expected the keys \"0\" .. \"{len(want) - 1}\", one per "
                         f"class, got {', '.join(map(repr, odd))} among them")
    return _check_label_list(where, [id2label[k] for k in want])


# ---------------------------------------------------------------------------- the table

FORMATS = [
    Format("transformers Swin v1", lambda c: c.get("model_type") == "swin",
           _transformers, "transformers"),
    Format("transformers Swin V2", lambda c: c.get("model_type") == "swinv2",
           lambda c, s: _transformers(c, s, version=2), "transformers"),
    Format("timm Swin v1", lambda c: _timm_architecture(c).startswith("swin_"), _timm, "timm"),
    Format("timm Swin V2", lambda c: _timm_architecture(c).startswith("swinv2_"), _timm, "timm"),
    Format("minswin", lambda c: c.get("model_type") == "minswin", _minswin, "official"),
]


def recognise(cfg):
    """The Format whose config.json this is; a ValueError naming what was found if none."""
    for fmt in FORMATS:
        if fmt.matches(cfg):
            return fmt
    what = cfg.get("model_type") or cfg.get("architecture") or sorted(cfg)[:6]
    raise ValueError(f"config.json: expected a Swin config (transformers \"model_type\": "
                     f"\"swin\" or \"swinv2\", a timm \"architecture\": \"swin_...\" or "
                     f"\"swinv2_...\", or a minswin folder), got {what!r}")


def describe(name, config):
    """'transformers Swin v1, 224, window 7, 10 classes' (or 'headless, 768 features')."""
    c = config
    head = f"{c.num_classes} classes" if c.num_classes else \
        f"headless, {c.num_features} features"
    return f"{name}, {c.img_name}, window {c.window_size}, {head}"


# ---------------------------------------------------------------------------- reading a folder

MAX_JSON_BYTES = 64 << 20       # a config or an index is kilobytes; more is not one


def _read_json(path):
    """A config.json or index: a regular file of at most MAX_JSON_BYTES, valid JSON."""
    if not os.path.isfile(path):
        raise ValueError(f"path: {path!r} is not a regular file")
    if os.path.getsize(path) > MAX_JSON_BYTES:
        raise ValueError(f"path: {path!r} is {os.path.getsize(path):,} bytes, more than a "
                         f"config or index ever is ({MAX_JSON_BYTES:,})")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (ValueError, RecursionError) as err:      # JSON, UTF-8, nesting too deep
        raise ValueError(f"path: {path!r} is not valid JSON ({type(err).__name__}: "
                         f"{str(err)[:200]})") from None


def _folder_weights(folder):
    """({name: array}, file name, metadata) from the folder's safetensors file(s); pickles are
    refused by name."""
    for name in SAFE_WEIGHTS:
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            continue
        if name.endswith(".index.json"):                   # sharded: weight_map key -> file
            return _sharded_weights(folder, path), name, {}
        state, meta = load_checkpoint(path, with_metadata=True)
        return state, name, meta
    pickled = [n for n in PICKLED_WEIGHTS if os.path.isfile(os.path.join(folder, n))]
    if pickled:
        raise ValueError(
            f"path: {folder!r} holds only PyTorch pickles ({', '.join(pickled)}), which minswin "
            "never unpickles. If you trust the file, convert it once: python "
            f"scripts/convert_torch_checkpoint.py {os.path.join(folder, pickled[0])} "
            f"{os.path.join(folder, 'model.safetensors')}")
    raise FileNotFoundError(f"path: {folder!r} has a config.json but no model.safetensors")


def _sharded_weights(folder, index_path):
    """{name: array} from the shards a model.safetensors.index.json names. The index must be
    {"weight_map": {tensor: shard file}, "metadata": {...}}; every shard a file inside the
    folder; every tensor in the shard the index says, and nowhere else."""
    index = _read_json(index_path)
    where = f"{index_path}"
    if not isinstance(index, dict):
        raise ValueError(f"{where}: expected an object with a \"weight_map\", got "
                         f"{_shown(index)}")
    if not isinstance(index.get("metadata", {}), dict):
        raise ValueError(f"{where}: metadata: expected an object, got "
                         f"{_shown(index['metadata'])}")
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise ValueError(f"{where}: weight_map: expected an object {{tensor name: shard file}}, "
                         f"got {_shown(weight_map)}")
    for key, shard in weight_map.items():
        if not isinstance(shard, str):
            raise ValueError(f"{where}: weight_map[{key!r}]: expected a file name, got "
                             f"{_shown(shard)}")
    root = os.path.realpath(folder)
    state = {}
    for shard in sorted(set(weight_map.values())):
        real = os.path.realpath(os.path.join(folder, shard))
        if os.path.isabs(shard) or os.path.dirname(real) != root:
            raise ValueError(f"{where}: weight_map names {shard!r}, which is not a file in the "
                             f"folder {folder!r}; a sharded index may name only files inside "
                             "its own folder")
        for key, value in load_checkpoint(real).items():
            if weight_map.get(key) != shard:
                raise ValueError(f"{where}: {shard!r} holds {key!r}, which weight_map "
                                 + (f"places in {weight_map[key]!r}" if key in weight_map
                                    else "does not name"))
            state[key] = value
    missing = [k for k in weight_map if k not in state]
    if missing:
        raise ValueError(f"{where}: weight_map places {missing[0]!r} in "
                         f"{weight_map[missing[0]]!r}, which does not hold it"
                         + (f" ({len(missing) - 1} more like it)" if len(missing) > 1 else ""))
    return state


def _build(config, dtype):
    """The v1 or V2 model a config describes (random weights, to be loaded)."""
    from .model import model_from_config
    return model_from_config(config, dtype=dtype)


def _load(model, state, keys, allow_nonfinite=False):
    """Strict load with the format's key names (for a V2 model, load_state_dict also checks and
    drops V2's own buffers: checkpoint_v2.py)."""
    return load_state_dict(model, state, strict=True, fmt=keys, allow_nonfinite=allow_nonfinite)


def _meta_json(meta, key, path):
    """The JSON value stored under `key` in a file's metadata (None when absent)."""
    if key not in meta:
        return None
    try:
        return json.loads(meta[key])
    except (ValueError, RecursionError):
        raise ValueError(f"path: {path!r}: its metadata {key!r} is not valid JSON") from None


def _from_file(path, dtype, allow_nonfinite=False):
    """A `.safetensors`/`.npz` written by minswin: the config is in the file's metadata."""
    from .training import META_KEY, model_from_checkpoint
    state, meta = load_checkpoint(path, with_metadata=True)
    if CONFIG_META_KEY in meta:
        where = f"{path}: metadata"
        config, labels = _minswin({"config": _meta_json(meta, CONFIG_META_KEY, path),
                                   "labels": _meta_json(meta, LABELS_META_KEY, path)},
                                  state, where)
        model = _build(config, dtype)
        _load(model, state, "official", allow_nonfinite)
        return model, labels, "minswin file"
    if META_KEY in meta:                                   # written by `minswin train`
        model, train_meta = model_from_checkpoint(path, allow_nonfinite=allow_nonfinite)
        if model.dtype != dtype:
            converted = _build(model.config, dtype)
            converted.load_state_dict(model.state_dict(), strict=True,
                                      allow_nonfinite=allow_nonfinite)
            model = converted
        return model, _check_label_list(f"{path}: metadata classes", train_meta.get("classes")), \
            "minswin training checkpoint"
    raise ValueError(
        f"path: {path!r} holds weights but no config (no {CONFIG_META_KEY!r} or {META_KEY!r} "
        "metadata), so the architecture is unknown: build the model with create_model(...) "
        "and call model.load_state_dict(load_checkpoint(path)), or pass the folder that has "
        "its config.json")


def from_pretrained(path, dtype="float32", verbose=True, allow_nonfinite=False):
    """The model a weights folder (or a minswin `.safetensors`) describes, with its weights.

    path: a folder holding config.json and model.safetensors (transformers or timm, as
        downloaded; or one written by save_pretrained), or a `.safetensors`/`.npz` file that
        minswin wrote. Nothing is downloaded.
    dtype: "float32" or "float64" (the file's floats are converted).
    verbose: print one line saying what was recognised.
    allow_nonfinite: load weights holding NaN or inf (refused otherwise), to inspect a broken
        run.

    The model is in eval mode; `model.labels` is the list of class names (None when the folder
    names none) and `model.source` the line printed. Loading is strict: a tensor left over or a
    parameter left unfilled is an error naming it.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"path: no such folder or file {path!r} (from_pretrained "
                                "reads local files only; download the folder first)")
    if os.path.isdir(path):
        config_path = os.path.join(path, "config.json")
        if not os.path.isfile(config_path):
            raise FileNotFoundError(f"path: the folder {path!r} has no config.json")
        cfg = _read_json(config_path)
        if not isinstance(cfg, dict):
            raise ValueError(f"path: {config_path!r} holds {type(cfg).__name__}, expected an "
                             "object")
        fmt = recognise(cfg)
        state, weights, meta = _folder_weights(path)
        config, labels = fmt.read(cfg, state)
        if fmt.name == "minswin" and CONFIG_META_KEY in meta:
            own = _minswin({"config": _meta_json(meta, CONFIG_META_KEY, path)}, state)[0]
            if own != config:
                raise ValueError(f"path: {path!r}: config.json and {weights} describe different "
                                 "models (written by different saves?); minswin does not "
                                 "guess which is right")
        model = _build(config, dtype)
        _load(model, state, fmt.keys, allow_nonfinite)
        name = fmt.name
    else:
        model, labels, name = _from_file(path, dtype, allow_nonfinite)
        weights = os.path.basename(path)
    if labels is not None and len(labels) != model.config.num_classes:
        raise ValueError(f"config.json: names {len(labels)} labels for a head of "
                         f"{model.config.num_classes} classes")
    model.labels = list(labels) if labels is not None else None
    model.source = f"{describe(name, model.config)} ({weights})"
    if verbose:
        print(model.source)
    return model.eval()


def save_pretrained(model, folder, labels=None):
    """Write `folder/config.json` + `folder/model.safetensors` that from_pretrained reads back.

    The safetensors file also carries the config (and labels) in its metadata, so it loads on
    its own. labels: class names, one per class (default: the model's own `labels`, if any)."""
    folder = os.fspath(folder)
    labels = labels if labels is not None else getattr(model, "labels", None)
    if labels is not None and len(labels) != model.config.num_classes:
        raise ValueError(f"labels: expected {model.config.num_classes} names (one per class), "
                         f"got {len(labels)}")
    config = model.config.as_dict()
    labels = _check_label_list("labels", labels)
    meta = {CONFIG_META_KEY: json.dumps(config)}
    if labels is not None:
        meta[LABELS_META_KEY] = json.dumps(labels)
    state = model.state_dict()
    text = json.dumps({"model_type": "minswin", "config": config, "labels": labels}, indent=2)

    def write_weights(tmp):
        save_checkpoint(tmp, state, meta)

    def write_config(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    os.makedirs(folder, exist_ok=True)
    # both or neither: a config.json beside weights of another model would load wrongly
    replace_together({os.path.join(folder, "model.safetensors"): write_weights,
                      os.path.join(folder, "config.json"): write_config})
