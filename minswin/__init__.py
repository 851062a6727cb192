"""minswin: the Swin Transformer from scratch in NumPy/CuPy, every backward by hand.

    import minswin
    model = minswin.create_model("swin_t")              # the official architecture and names
    logits = model.forward(x)                           # x: (B, 224, 224, 3) float32
    dx = model.backward(dlogits)                        # fills model.grads (same keys)
"""
from .runtime import prefer_sleeping_blas_threads

prefer_sleeping_blas_threads()     # before NumPy's first import: see minswin/runtime.py

from . import flops  # noqa: E402
from .backend import get_xp, to_backend, to_numpy, use  # noqa: E402
from .checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from .configs import CONFIGS, SwinConfig, get_config  # noqa: E402
from .model import SwinTransformer, create_model  # noqa: E402
from .ops.masks import attention_mask, region_labels, relative_position_index  # noqa: E402
from .ops.window import window_partition, window_reverse  # noqa: E402
from .pretrained import pretrained, pretrained_info  # noqa: E402
from .training import train  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "CONFIGS", "SwinConfig", "SwinTransformer", "attention_mask", "create_model", "flops",
    "get_config", "get_xp", "load_checkpoint", "pretrained", "pretrained_info", "region_labels",
    "relative_position_index", "save_checkpoint", "to_backend", "to_numpy", "train", "use",
    "window_partition", "window_reverse",
]
