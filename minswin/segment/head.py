"""Segmentation heads on a Swin's stage maps, on the plain tier (minswin.ops).

Symbols: B batch; stage i's map f_i (B, h_i, w_i, C_i), stride s_i = patch * 2^i; D the head
width; K classes; H, W the image.

FPNHead (a light feature pyramid, Lin et al. 2017, with 1x1 projections and no 3x3 smoothing):

    p_L = lateral_L(f_L)                                  the coarsest map, projected to D
    p_i = lateral_i(f_i) + up2(p_{i+1})                   top-down: coarse meaning, fine detail
    logits = up_{s_0}(classifier(p_0))                    (B, H, W, K)

LastStageHead: the same classifier on the last map alone, upsampled by its whole stride:

    logits = up_{s_L}(classifier(lateral(f_L)))

Each 1x1 projection is a Linear on the channel axis; up_f is nearest-neighbour upsampling
(ops/upsample.py). Backward runs the lines above in reverse, the sum sending its gradient to
both terms.
"""
from ..layers import Linear
from ..module import Module
from ..ops.upsample import upsample_backward, upsample_forward


class FPNHead(Module):
    """`head`: lateral.i (C_i -> D) for every stage, classifier (D -> K)."""

    def __init__(self, channels, reductions, dim, num_classes, rng, dtype):
        super().__init__()
        self.reductions = list(reductions)
        self.lateral = [self.child(f"lateral.{i}", Linear(c, dim, rng=rng, dtype=dtype))
                        for i, c in enumerate(channels)]
        self.classifier = self.child("classifier", Linear(dim, num_classes, rng=rng,
                                                          dtype=dtype))

    def forward(self, maps, image_hw):
        """maps [f_0 .. f_L] -> logits (B, H, W, K)."""
        caches = []
        p = self.lateral[-1].forward(maps[-1])                       # (B, h_L, w_L, D)
        for i in range(len(maps) - 2, -1, -1):
            up, c = upsample_forward(p, 2, size=maps[i].shape[1:3])   # (B, h_i, w_i, D)
            caches.append(c)
            p = self.lateral[i].forward(maps[i]) + up               # (B, h_i, w_i, D)
        z = self.classifier.forward(p)                               # (B, h_0, w_0, K)
        logits, c = upsample_forward(z, self.reductions[0], size=image_hw)   # (B, H, W, K)
        self.cache = (caches, c)
        return logits

    def backward(self, dlogits):
        """dlogits (B, H, W, K) -> [df_0 .. df_L]; accumulates the head's grads."""
        caches, c = self.cache
        dp = self.classifier.backward(upsample_backward(dlogits, c))   # (B, h_0, w_0, D)
        dmaps = []
        for i, up_cache in zip(range(len(self.lateral) - 1), reversed(caches)):
            # forward: p_i = lateral_i(f_i) + up2(p_{i+1}): dp goes to both terms
            dmaps.append(self.lateral[i].backward(dp))
            dp = upsample_backward(dp, up_cache)                     # (B, h_{i+1}, ...)
        dmaps.append(self.lateral[-1].backward(dp))
        return dmaps


class LastStageHead(Module):
    """`head`: lateral.0 on the last stage's map (C_L -> D), classifier (D -> K)."""

    def __init__(self, channels, reductions, dim, num_classes, rng, dtype):
        super().__init__()
        self.stride = reductions[-1]
        self.lateral = self.child("lateral.0", Linear(channels[-1], dim, rng=rng, dtype=dtype))
        self.classifier = self.child("classifier", Linear(dim, num_classes, rng=rng,
                                                          dtype=dtype))

    def forward(self, maps, image_hw):
        z = self.classifier.forward(self.lateral.forward(maps[-1]))   # (B, h_L, w_L, K)
        logits, self.cache = upsample_forward(z, self.stride, size=image_hw)
        return logits                                                  # (B, H, W, K)

    def backward(self, dlogits):
        dz = upsample_backward(dlogits, self.cache)
        return [self.lateral.backward(self.classifier.backward(dz))]


HEADS = {"fpn": FPNHead, "last": LastStageHead}
