"""Swin Transformer V2: res-post-norm blocks, cosine attention, continuous position bias.

Symbols as in model.py: B batch, H, W map size, C width, M window, S shift, nW windows,
N = M*M, nH heads.

    image (B, H, W, 3) -> patch_embed -> layers.0 .. layers.{L-1} -> norm -> mean -> head
    block: x = x + DropPath(norm1(unshift(Attn(shift(x)))));  x = x + DropPath(norm2(MLP(x)))

What changes from v1 (docs/semantics.md, section 6), and why:
* res-post-norm: the LayerNorm moves from the input of each branch to its output. In v1 each
  block adds its un-normalised branch to the main path, so activations grow with depth; V2
  adds a normalised one (and the official init sets norm1/norm2 to zero, so every block
  starts as the identity);
* scaled cosine attention with a learned temperature (ops/cosine_attention.py);
* the bias comes from a network of the log-spaced offset (ops/continuous_bias.py), so the
  same weights serve any window; `pretrained_window_sizes` says what the coordinates were
  normalised by in training;
* patch merging normalises after the reduction (ops/patch_merging_v2.py).
Unchanged: patch embedding, the window/shift/mask logic and the shrink rule, the MLP, the
head; at sizes that are not multiples of the window the map is padded as in v1 (torchvision).
"""
import numpy as np

from .layers_v2 import PatchMergingV2, WindowAttentionV2
from .model import BasicLayer, SwinTransformer, SwinTransformerBlock
from .ops.droppath import droppath_backward, droppath_forward
from .tiers import tier


class SwinTransformerV2Block(SwinTransformerBlock):
    """x = x + DropPath(norm1(unshift(WindowAttentionV2(shift(x)))))
    x = x + DropPath(norm2(MLP(x)))                        (res-post-norm)

    Built as v1's block (the same window/shift decision, windowed attention, children and
    names), with WindowAttentionV2 as `attn` and norm1/norm2 starting at zero; forward and
    backward are its own: the LayerNorms move to the branch outputs."""

    def __init__(self, dim, input_resolution, num_heads, window_size, shift_size, mlp_ratio,
                 drop_path, pretrained_window_size, rng, dtype=np.float32):
        self.pretrained_window_size = pretrained_window_size    # read by make_attention
        super().__init__(dim, input_resolution, num_heads, window_size, shift_size, mlp_ratio,
                         drop_path, rng, dtype)
        for norm in (self.norm1, self.norm2):              # official `_init_respostnorm`:
            norm.params["weight"][...] = 0                 # every block starts as the identity

    def make_attention(self, rng, dtype):
        return WindowAttentionV2(self.dim, self.window_size, self.num_heads,
                                 self.pretrained_window_size, rng, dtype)

    def forward(self, x):
        """(B, H, W, C) -> (B, H, W, C)"""
        ops = tier(x)                                      # LN, MLP, add: plain or fast
        a, win_cache = self.attend_in_windows(x)
        y = self.norm1.forward(a)                          # res-post-norm: LN last
        y, dp1 = droppath_forward(y, self.drop_path, self.training, self.rng)
        x = ops.add(x, y)                                  # residual 1: x + y
        m = self.norm2.forward(self.mlp.forward(x))        # (B, H, W, C) post-norm
        m, dp2 = droppath_forward(m, self.drop_path, self.training, self.rng)
        self.cache = (win_cache, dp1, dp2)
        return ops.add(x, m)                               # residual 2: x + m

    def backward(self, dout):
        ops = tier(dout)
        win_cache, dp1, dp2 = self.cache
        # forward: out = x1 + DropPath(norm2(MLP(x1)))
        dm = droppath_backward(dout, dp2)
        dx1 = ops.add(dout, self.mlp.backward(self.norm2.backward(dm)))
        # forward: x1 = x + DropPath(norm1(attend_in_windows(x)))
        da = self.norm1.backward(droppath_backward(dx1, dp1))
        return ops.add(dx1, self.attend_in_windows_backward(da, win_cache))   # (B, H, W, C)


class BasicLayerV2(BasicLayer):
    """`layers.i`: `depth` V2 blocks alternating W-MSA / SW-MSA, then PatchMerging V2 if not
    last. Built, run and run backward as v1's stage; only its blocks and merging differ."""

    def __init__(self, dim, input_resolution, depth, num_heads, window_size, mlp_ratio,
                 drop_paths, downsample, pretrained_window_size, rng, dtype=np.float32):
        self.pretrained_window_size = pretrained_window_size    # read by make_block
        super().__init__(dim, input_resolution, depth, num_heads, window_size, mlp_ratio,
                         drop_paths, downsample, rng, dtype)

    def make_block(self, dim, resolution, num_heads, window_size, shift, mlp_ratio, drop_path,
                   rng, dtype):
        return SwinTransformerV2Block(dim, resolution, num_heads, window_size, shift,
                                      mlp_ratio, drop_path, self.pretrained_window_size, rng,
                                      dtype)

    def make_downsample(self, dim, rng, dtype):
        return PatchMergingV2(dim, rng, dtype)


class SwinTransformerV2(SwinTransformer):
    """The whole V2 network; parameter names are the official swin_transformer_v2.py's.
    forward, backward, state_dict, load_state_dict and the rest are v1's (checkpoint.py hands
    a V2 model's state to checkpoint_v2.py: torchvision's qkv.bias, the V2 buffers)."""

    def make_layer(self, i, dim, resolution, depth, drop_paths, dtype, downsample):
        """Stage i of V2 blocks, with the stage's pretrained window (SwinTransformer.__init__
        calls this for each stage; everything else is built as in v1)."""
        c = self.config
        return BasicLayerV2(dim, resolution, depth, c.num_heads[i], c.window_size, c.mlp_ratio,
                            drop_paths, downsample, c.pretrained_windows[i], self.rng,
                            dtype)
