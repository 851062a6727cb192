"""SwinSegmenter: a features_only Swin (the backbone) and a head that turns its stage maps
into per-pixel logits.

    image (B, H, W, 3) -> backbone -> [f_0 .. f_L] -> head -> logits (B, H, W, K)

Parameters are named `backbone.<official Swin key>` and `head.<...>`; backward takes
dlogits (B, H, W, K) and returns dx, the head handing the backbone one gradient per map.
"""
import numpy as np

from ..model import create_model
from ..module import Module
from .head import HEADS


class SwinSegmenter(Module):
    def __init__(self, backbone, head="fpn", dim=32, num_classes=11, seed=0):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head: expected one of {sorted(HEADS)}, got {head!r}")
        self.head_kind, self.dim, self.num_classes = head, dim, num_classes
        # the last-stage head needs only the last map: the backbone returns only that one
        self.backbone = self.child("backbone", backbone)
        info = backbone.feature_info
        rng = np.random.default_rng([seed, 1])                       # the head's own draws
        self.head = self.child("head", HEADS[head](info.channels(), info.reduction(), dim,
                                                   num_classes, rng, backbone.dtype))
        self.dtype, self.rng = backbone.dtype, backbone.rng

    @property
    def xp(self):
        return self.backbone.xp

    @property
    def config(self):
        return self.backbone.config

    def forward(self, x):
        """x (B, H, W, 3) -> logits (B, H, W, K)."""
        maps = self.backbone.forward(x)
        return self.head.forward(maps, x.shape[1:3])

    def backward(self, dlogits):
        """dlogits (B, H, W, K) -> dx (B, H, W, 3); fills self.grads."""
        return self.backbone.backward(self.head.backward(dlogits))

    def state_dict(self):
        return dict(self.params)

    def load_state_dict(self, state, strict=True, allow_nonfinite=False):
        """Copy `state` (this model's own names) in; every key must be one of the model's, of
        the same shape, and, strict, every parameter filled. NaN/inf refused unless
        allow_nonfinite."""
        from ..backend import to_backend
        from ..checkpoint import nonfinite_problems
        unknown = sorted(set(state) - set(self.params))
        missing = sorted(set(self.params) - set(state)) if strict else []
        if unknown or missing:
            raise ValueError(f"state: expected the segmenter's keys; unexpected {unknown[:5]}"
                             f", missing {missing[:5]}")
        for k, v in state.items():
            if tuple(v.shape) != tuple(self.params[k].shape):
                raise ValueError(f"{k}: expected shape {tuple(self.params[k].shape)}, got "
                                 f"{tuple(v.shape)}")
        if not allow_nonfinite:
            problems = nonfinite_problems(state)
            if problems:
                raise ValueError("state: weights are not finite: " + "; ".join(problems))
        for k, v in state.items():
            self.params[k][...] = to_backend(v, self.xp).astype(self.dtype)
        return self


def create_segmenter(name="swin_canvas", head="fpn", dim=32, num_classes=11, seed=0,
                     dtype="float32", init="lecun", backbone_init="swin_digits", **overrides):
    """A Swin backbone (config `name`, features of every stage, or of the last one for
    head="last") with a segmentation head.

    backbone_init: a shipped classifier ("swin_digits") whose weights start every backbone
    parameter of the same name and shape (the first two stages of swin_canvas), as ImageNet
    weights start the detection and segmentation backbones of the paper; "" for none. The rest
    is drawn from `seed` (block linears rescaled as training.rescale_init, init="lecun")."""
    from ..configs import get_config
    L = get_config(name, **overrides).num_layers
    out = tuple(range(L)) if head == "fpn" else (L - 1,)
    backbone = create_model(name, seed=seed, dtype=dtype, features_only=True,
                            out_indices=out, **overrides)
    if init == "lecun":
        from ..training import rescale_init
        rescale_init(backbone)
    backbone.initialised_from = []
    if backbone_init:
        from ..weights import pretrained
        source = pretrained(backbone_init).state_dict()
        for k, p in backbone.params.items():
            if k in source and source[k].shape == p.shape:
                p[...] = source[k]
                backbone.initialised_from.append(k)
    return SwinSegmenter(backbone, head=head, dim=dim, num_classes=num_classes, seed=seed)
