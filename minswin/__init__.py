"""minswin: the Swin Transformer from scratch in NumPy/CuPy, every backward by hand.

    import minswin
    model = minswin.create_model("swin_t")              # the official architecture and names
    logits = model.forward(x)                           # x: (B, 224, 224, 3) float32
    dx = model.backward(dlogits)                        # fills model.grads (same keys)

The maths lives in minswin.ops (the plain tier); minswin.fast holds its fast twins, and
`minswin.use_fast(enabled)` chooses which the layers run (minswin/tiers.py).

`import minswin` is light: it sets no environment variable and imports nothing heavy (not
even NumPy) until a name below is first used, so the `minswin` command and the benchmarks can
set OPENBLAS_THREAD_TIMEOUT before NumPy loads (minswin/runtime.py).
"""
import importlib

__version__ = "0.1.0"

# public name -> the module that defines it, imported on first use (PEP 562)
_EXPORTS = {
    "get_xp": "backend", "to_backend": "backend", "to_numpy": "backend", "use": "backend",
    "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
    "CONFIGS": "configs", "SwinConfig": "configs", "get_config": "configs",
    "SwinTransformer": "model", "create_model": "model",
    "SwinTransformerV2": "model_v2", "SwinV2Config": "configs",
    "attention_mask": "ops.masks", "region_labels": "ops.masks",
    "relative_position_index": "ops.masks",
    "resize_relative_bias_table": "ops.resize",
    "window_partition": "ops.window", "window_reverse": "ops.window",
    "use_fast": "tiers",
    "no_grad": "grad_mode", "is_grad_enabled": "grad_mode",
    "num_threads": "fast.parallel", "set_num_threads": "fast.parallel",
    "train": "training",
    "from_pretrained": "folders", "save_pretrained": "folders",
    "pretrained": "weights", "pretrained_info": "weights",
}

__all__ = sorted([*_EXPORTS, "flops"])


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    else:
        try:                                               # a submodule: minswin.flops, ...
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value                                # once: the next lookup is plain
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
