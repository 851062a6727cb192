"""The Swin Transformer: blocks, stages (`layers`), and the whole network.

Symbols: B batch, H, W map size, C width, M window, S shift, nW windows, N = M*M, nH heads.
Between modules a feature map is (B, H, W, C), channels last (the official (B, H*W, C) is the
same memory, token t = r*W + c).

    image (B, H, W, 3) -> patch_embed -> layers.0 .. layers.{L-1} -> norm -> mean -> head
    layers.i = blocks (W-MSA, SW-MSA, W-MSA, ...) then, for i < L-1, downsample (merging)

Window and shift (docs/semantics.md, section 3):
* when a block is built for its resolution, the official shrink rule applies: if the map is
  no bigger than the window, the window becomes the map and the shift 0;
* at run time the map is padded to multiples of the window, and on any axis that one window
  covers the shift is 0 (torchvision/det). At the model's own img_size this is the official
  model; at other sizes it is torchvision's.
"""
import contextlib

import numpy as np

from .backend import get_xp, rng as make_rng
from .checks import check_array, check_seed, check_shape
from .configs import get_config
from .grad_mode import is_grad_enabled, no_grad
from .layers import LayerNorm, Linear, Mlp, PatchEmbed, PatchMerging, WindowAttention
from .memory import check_model_fits, no_grad_pieces
from .module import Module
from .ops.droppath import droppath_backward, droppath_forward
from .ops.masks import cached_attention_mask, forward_window_shift, official_window_shift
from .ops.window import from_windows, from_windows_backward, to_windows_backward, to_windows_forward
from .tiers import tier


class SwinTransformerBlock(Module):
    """x = x + DropPath(unshift(WindowAttention(shift(LN1(x))))); x = x + DropPath(MLP(LN2(x)))"""

    def __init__(self, dim, input_resolution, num_heads, window_size, shift_size,
                 mlp_ratio, drop_path, rng, dtype=np.float32):
        super().__init__()
        self.dim, self.num_heads, self.input_resolution = dim, num_heads, input_resolution
        self.window_size, self.shift_size = official_window_shift(input_resolution,
                                                                  window_size, shift_size)
        # the shift used at other map sizes: the block's own (tv), cut to fit a shrunk window
        self.nominal_shift = shift_size if self.window_size == window_size else \
            (self.window_size // 2 if shift_size else 0)
        self.drop_path = drop_path
        self.rng = rng                  # the model's generator, shared: DropPath draws
        self.norm1 = self.child("norm1", LayerNorm(dim, dtype))
        self.attn = self.child("attn", self.make_attention(rng, dtype))
        self.norm2 = self.child("norm2", LayerNorm(dim, dtype))
        self.mlp = self.child("mlp", Mlp(dim, int(dim * mlp_ratio), rng, dtype))

    def make_attention(self, rng, dtype):
        """The block's `attn`, for its (possibly shrunk) window; Swin V2 builds its own here."""
        return WindowAttention(self.dim, self.window_size, self.num_heads, rng, dtype)

    def window_shift_for(self, H, W):
        """((Hp, Wp), (sh, sw)) this block uses on an (H, W) map.

        At the resolution it was built for: the official decision (shift 0 once the window
        covers the map). At any other size: the nominal shift, switched off per axis where
        one window covers the padded axis (torchvision).
        """
        official = (H, W) == tuple(self.input_resolution)
        shift = self.shift_size if official else self.nominal_shift
        return forward_window_shift(H, W, self.window_size, shift)

    def attend_in_windows(self, h):
        """(W-MSA or SW-MSA) h (B, H, W, C) -> (y (B, H, W, C), win_cache): pad, roll, split
        into windows, attend within each (masked across regions when shifted), merge, roll
        back, crop."""
        H, W = h.shape[1:3]
        (Hp, Wp), shift = self.window_shift_for(H, W)
        M = self.window_size
        tokens, win_cache = to_windows_forward(h, M, shift)   # (B*nW, N, C) pad, roll, split
        mask = cached_attention_mask(Hp, Wp, M, shift, get_xp(h), h.dtype)  # (nW, N, N) or None
        a = self.attn.forward(tokens, mask)                # (B*nW, N, C)
        self.windows = (Hp // M) * (Wp // M)               # per image, for attention_weights
        return from_windows(a, win_cache), win_cache       # (B, H, W, C) merge, roll back, crop

    def attend_in_windows_backward(self, dy, win_cache):
        """dy (B, H, W, C) -> dh (B, H, W, C), through attend_in_windows."""
        da = from_windows_backward(dy, win_cache)          # (B*nW, N, C) pad, roll, split
        dtokens = self.attn.backward(da)                   # (B*nW, N, C)
        return to_windows_backward(dtokens, win_cache)     # (B, H, W, C) merge, roll back, crop

    def forward(self, x):
        """(B, H, W, C) -> (B, H, W, C)"""
        ops = tier(x)                                      # plain or fast (minswin.use_fast)
        y, win_cache = self.attend_in_windows(self.norm1.forward(x))   # pre-norm: LN first
        y, dp1 = droppath_forward(y, self.drop_path, self.training, self.rng)
        x = ops.add(x, y)                                  # residual 1: x + y
        m = self.mlp.forward(self.norm2.forward(x))        # (B, H, W, C)
        m, dp2 = droppath_forward(m, self.drop_path, self.training, self.rng)
        self.cache = (win_cache, dp1, dp2)
        return ops.add(x, m)                               # residual 2: x + m

    def backward(self, dout):
        ops = tier(dout)
        win_cache, dp1, dp2 = self.cache
        # forward: out = x1 + DropPath(MLP(LN2(x1)))
        dm = droppath_backward(dout, dp2)
        dx1 = ops.add(dout, self.norm2.backward(self.mlp.backward(dm)))
        # forward: x1 = x + DropPath(attend_in_windows(LN1(x)))
        dh = self.attend_in_windows_backward(droppath_backward(dx1, dp1), win_cache)
        return ops.add(dx1, self.norm1.backward(dh))

    def attention_weights(self):
        """The last forward's attention probabilities as (B, nW, nH, N, N)."""
        return self.attn.attention_weights(getattr(self, "windows", 1))


class BasicLayer(Module):
    """`layers.i`: `depth` blocks alternating W-MSA / SW-MSA, then `downsample` if not last."""

    def __init__(self, dim, input_resolution, depth, num_heads, window_size, mlp_ratio,
                 drop_paths, downsample, rng, dtype=np.float32):
        super().__init__()
        self.dim, self.input_resolution = dim, input_resolution
        self.blocks = []
        for j in range(depth):
            shift = 0 if j % 2 == 0 else window_size // 2   # odd blocks shift by M // 2
            blk = self.make_block(dim, input_resolution, num_heads, window_size, shift,
                                  mlp_ratio, drop_paths[j], rng, dtype)
            self.blocks.append(self.child(f"blocks.{j}", blk))
        self.downsample = self.child("downsample", self.make_downsample(dim, rng, dtype)) \
            if downsample else None

    def make_block(self, dim, resolution, num_heads, window_size, shift, mlp_ratio, drop_path,
                   rng, dtype):
        """Block j of the stage (W-MSA when shift is 0, else SW-MSA); Swin V2 builds its own."""
        return SwinTransformerBlock(dim, resolution, num_heads, window_size, shift, mlp_ratio,
                                    drop_path, rng, dtype)

    def make_downsample(self, dim, rng, dtype):
        """The patch merging at the end of the stage; Swin V2 builds its own."""
        return PatchMerging(dim, rng, dtype)

    def forward(self, x):
        return self.forward_merge(self.forward_blocks(x))

    def backward(self, dout):
        return self.backward_blocks(self.backward_merge(dout))

    # the stage's two halves: a feature pyramid reads the map between them (the stage's
    # output at its own resolution, timm's `layers.i`), then merging halves it for the next
    def forward_blocks(self, x):
        """(B, H, W, C) -> (B, H, W, C): the blocks, in order."""
        for blk in self.blocks:
            x = blk.forward(x)
        return x

    def backward_blocks(self, dout):
        for blk in reversed(self.blocks):
            dout = blk.backward(dout)
        return dout

    def forward_merge(self, x):
        """(B, H, W, C) -> (B, ceil(H/2), ceil(W/2), 2C), or x itself in the last stage."""
        return x if self.downsample is None else self.downsample.forward(x)

    def backward_merge(self, dout):
        return dout if self.downsample is None else self.downsample.backward(dout)


class SwinTransformer(Module):
    """The whole network; parameter names are the official checkpoint's (docs/semantics.md,
    section 1)."""

    def __init__(self, config, seed=0, dtype="float32", features_only=False, out_indices=None):
        super().__init__()
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype: expected float32 or float64, got {dtype}")
        check_model_fits(config, dtype)          # refused in one line, before allocating
        self.config, self.dtype = config, dtype
        # features_only (timm's name): a backbone that returns the map of each stage in
        # out_indices; the stages after the last one asked for, the final norm and the head
        # are not built (their weights would get no gradient)
        self.features_only = bool(features_only)
        self.out_indices = check_out_indices(out_indices, config.num_layers, features_only)
        built = max(self.out_indices) + 1 if self.features_only else config.num_layers
        self.rng = make_rng(check_seed("seed", seed))   # initial weights, then DropPath
        c = config
        self.patch_embed = self.child("patch_embed", PatchEmbed(c.patch_size, c.in_chans,
                                                                 c.embed_dim, self.rng, dtype))
        # the (H, W) map each stage really gets: the image is padded to a multiple of the
        # patch and odd maps before merging, so sizes round up (official sizes divide exactly)
        dpr = np.linspace(0, c.drop_path_rate, sum(c.depths))   # rises linearly per block
        self.layers, start = [], 0
        for i, (depth, dim, res) in enumerate(zip(c.depths, c.stage_dims,
                                                  c.stage_resolutions())):
            if i == built:
                break
            layer = self.make_layer(i, dim, res, depth,
                                    [float(p) for p in dpr[start:start + depth]], dtype,
                                    downsample=i < built - 1)
            self.layers.append(self.child(f"layers.{i}", layer))
            start += depth
        if self.features_only:
            self.norm = self.head = None
            self.feature_info = FeatureInfo(
                dict(num_chs=c.stage_dims[i], reduction=c.patch_size * 2 ** i,
                     module=f"layers.{i}") for i in self.out_indices)
            return
        self.norm = self.child("norm", LayerNorm(c.num_features, dtype))
        # num_classes=0: a headless backbone (no `head.*`); forward returns the pooled features
        self.head = self.child("head", Linear(c.num_features, c.num_classes, rng=self.rng,
                                              dtype=dtype)) if c.num_classes else None

    def make_layer(self, i, dim, resolution, depth, drop_paths, dtype, downsample):
        """Stage i (`layers.i`), built for its map `resolution`, with a patch merging at its
        end if `downsample`; Swin V2 builds its own here."""
        c = self.config
        return BasicLayer(dim, resolution, depth, c.num_heads[i], c.window_size, c.mlp_ratio,
                          drop_paths, downsample, self.rng, dtype)

    @property
    def xp(self):
        return get_xp(self.params["patch_embed.proj.weight"])

    def check_input(self, x):
        get_xp(x, self.params["patch_embed.proj.weight"])  # same backend as the weights
        check_array("x", x, ndim=4, last=self.config.in_chans)
        if x.dtype != self.dtype:
            raise TypeError(f"x: expected dtype {self.dtype} like the model's weights, got "
                            f"{x.dtype}; convert with x.astype('{self.dtype}')")

    def forward(self, x):
        """x (B, H, W, in_chans) -> logits (B, num_classes), or (B, num_features) headless.

        features_only: a list with the map (B, H_i, W_i, C_i) of each stage in out_indices,
        H_i = ceil(H / (patch * 2^i)) (see `feature_info`)."""
        if self.features_only:
            return self.forward_pyramid(x)
        self.check_input(x)
        pieces = no_grad_pieces(self.config, x.shape[0], self.dtype)   # no_grad: a large
        if pieces:                                         # batch in pieces, bounded memory
            return self.xp.concatenate([self._classify(x[a:b]) for a, b in pieces])
        return self._classify(x)

    def _classify(self, x):
        """forward's maths on an input already checked: features, pool, head."""
        x = self._features(x)                              # (B, h, w, 8C)
        self.cache = x.shape
        pooled = x.mean(axis=(1, 2))                       # (B, 8C)
        if self.head is None:                              # headless: the pooled features
            return pooled
        return self.head.forward(pooled)                   # (B, num_classes)

    def forward_features(self, x):
        """x (B, H, W, in_chans) -> the final normed map (B, h, w, 8C), before pooling."""
        if self.features_only:
            raise RuntimeError("forward_features: a features_only model has no final norm; "
                               "its forward returns the stage maps")
        self.check_input(x)
        return self._features(x)

    def _features(self, x):
        """forward_features' maths on an input already checked."""
        x = self.patch_embed.forward(x)                    # (B, H/4, W/4, C)
        for layer in self.layers:
            x = layer.forward(x)                           # half the map, twice the width
        return self.norm.forward(x)                        # (B, h, w, 8C)

    def backward_features(self, dmap):
        """dmap (B, h, w, 8C), the gradient of forward_features' map -> dx (B, H, W, in_chans);
        accumulates into self.grads."""
        dx = self.norm.backward(dmap)
        for layer in reversed(self.layers):
            dx = layer.backward(dx)
        return self.patch_embed.backward(dx)

    def forward_pyramid(self, x):
        """x (B, H, W, in_chans) -> [map of stage i for i in out_indices], each (B, h, w, C)
        read after the stage's blocks, before its merging (the features_only forward)."""
        self.check_input(x)
        x = self.patch_embed.forward(x)                    # (B, H/4, W/4, C)
        maps, shapes = [], []
        for i, layer in enumerate(self.layers):
            x = layer.forward_blocks(x)                    # (B, h, w, C_i)
            if i in self.out_indices:
                maps.append(x)
            shapes.append(x.shape)
            x = layer.forward_merge(x)                     # half the map, twice the width
        self.cache = shapes
        return maps

    def backward_pyramid(self, dmaps):
        """dmaps: one gradient per returned map (None where the loss does not use it) ->
        dx (B, H, W, in_chans); accumulates into self.grads.

        The gradients meet on the way down: stage i's map feeds both the output and the
        merging into stage i+1, so its gradient is the sum of the two."""
        shapes = self.cache
        if not isinstance(dmaps, (list, tuple)) or len(dmaps) != len(self.out_indices):
            raise ValueError(f"dmaps: expected a list of {len(self.out_indices)} gradients "
                             f"(one per map of out_indices={self.out_indices}, None for an "
                             f"unused one), got {_describe(dmaps)}")
        given = dict(zip(self.out_indices, dmaps))
        for k, (i, g) in enumerate(given.items()):
            if g is not None:
                check_shape(f"dmaps[{k}]", g, shapes[i])
        if all(g is None for g in dmaps):
            raise ValueError("dmaps: every gradient is None; give at least one map's")
        get_xp(self.params["patch_embed.proj.weight"], *[g for g in dmaps if g is not None])
        d = None                                           # gradient of the current map
        for i in reversed(range(len(self.layers))):
            layer = self.layers[i]
            if d is not None:
                d = layer.backward_merge(d)                # from stage i+1 back through merging
            g = given.get(i)
            if g is not None:
                d = g if d is None else tier(d).add(d, g)  # output and merging both read it
            if d is not None:                              # None above the first given map
                d = layer.backward_blocks(d)
        return self.patch_embed.backward(d)

    def trace(self, x):
        """`forward(x)`, watched: returns (logits, trace), trace the (name, output shape) of
        patch_embed, every block and downsample, norm, avgpool and head, in order (the tour's
        and the hierarchy figure's table).

        A walk over the modules: each watched module's forward is wrapped for this one call,
        so the forward itself knows nothing of it.
        """
        trace = []
        watched = [("patch_embed", self.patch_embed)]
        for i, layer in enumerate(self.layers):
            watched += [(f"layers.{i}.blocks.{j}", b) for j, b in enumerate(layer.blocks)]
            if layer.downsample is not None:
                watched.append((f"layers.{i}.downsample", layer.downsample))
        watched.append(("norm", self.norm))

        def recorded(name, forward):
            def run(*args):
                out = forward(*args)
                trace.append((name, tuple(out.shape)))
                return out
            return run
        for name, module in watched:
            module.forward = recorded(name, module.forward)    # shadows the method
        try:
            with contextlib.ExitStack() as whole:          # one pass, not no_grad's pieces
                if not is_grad_enabled():
                    whole.enter_context(no_grad(keep_attention=True))
                logits = self.forward(x)
        finally:
            for _, module in watched:
                del module.forward                         # the class's method again
        B, F = logits.shape[0], trace[-1][1][-1]
        trace.append(("avgpool", (B, F)))
        if self.head is not None:
            trace.append(("head", tuple(logits.shape)))
        return logits, trace

    def backward(self, dlogits):
        """dlogits (B, num_classes) -> dx (B, H, W, in_chans); accumulates into self.grads.

        Headless (num_classes=0): dlogits is the gradient of the pooled features (B, 8C).
        features_only: a list of one gradient per returned map (None for an unused map)."""
        if self.cache is None:
            raise RuntimeError("backward: no forward to go back through; call "
                               "model.forward(x) first (backward uses its cache)")
        if self.features_only:
            return self.backward_pyramid(dlogits)
        xp = get_xp(dlogits, self.params["norm.weight"])
        B, h, w, F = self.cache
        check_shape("dlogits", dlogits, (B, F if self.head is None else self.config.num_classes))
        dpooled = dlogits if self.head is None else self.head.backward(dlogits)   # (B, 8C)
        # forward: pooled = mean over h*w tokens  ->  each token gets dpooled / (h*w)
        dx = xp.broadcast_to(dpooled[:, None, None, :] / (h * w), (B, h, w, F))
        return self.backward_features(dx)

    # -------------------------------------------------------------- introspection
    def state_dict(self):
        """Official keys -> the live parameter arrays (copy them to keep a snapshot)."""
        return dict(self.params)

    def load_state_dict(self, state, strict=True, allow_nonfinite=False, resize_windows=False):
        from .checkpoint import load_state_dict
        return load_state_dict(self, state, strict=strict, allow_nonfinite=allow_nonfinite,
                               resize_windows=resize_windows)

    def flops(self, img_size=None):
        from .flops import model_flops
        return model_flops(self.config, img_size)

    def flops_breakdown(self, img_size=None):
        from .flops import model_flops_breakdown
        return model_flops_breakdown(self.config, img_size)

    def blocks(self):
        """(name, block) for every Swin block, in order."""
        return [(f"layers.{i}.blocks.{j}", b) for i, layer in enumerate(self.layers)
                for j, b in enumerate(layer.blocks)]


def create_model(name, num_classes=1000, img_size=None, seed=0, dtype="float32",
                 features_only=False, out_indices=None, **overrides):
    """Build a Swin model by config name ("swin_t", "swin_s", "swin_b", "swin_l", "swin_b_384",
    "swin_l_384", "swin_micro"; Swin V2: "swinv2_t", "swinv2_s", "swinv2_b", "swinv2_t_w16",
    ...), with any config field overridden by keyword. img_size: an int, or (H, W).

    features_only=True (timm's names): a backbone whose forward returns the map of each stage
    in out_indices (default: every stage), NHWC, described by `model.feature_info`; its
    backward takes one gradient per map (None for a map the loss does not use)."""
    if features_only and "num_classes" not in overrides:
        num_classes = 0                                    # no head is built either way
    config = get_config(name, num_classes=num_classes, img_size=img_size, **overrides)
    return model_from_config(config, seed=seed, dtype=dtype, features_only=features_only,
                             out_indices=out_indices)


def model_from_config(config, seed=0, dtype="float32", features_only=False, out_indices=None):
    """The network a SwinConfig (v1) or SwinV2Config (V2) describes."""
    kw = dict(seed=seed, dtype=dtype, features_only=features_only, out_indices=out_indices)
    if config.version == 2:
        from .model_v2 import SwinTransformerV2
        return SwinTransformerV2(config, **kw)
    return SwinTransformer(config, **kw)


class FeatureInfo(list):
    """timm's `feature_info` for the returned maps: a list of dict(num_chs, reduction,
    module), with timm's accessors."""

    def channels(self):
        return [f["num_chs"] for f in self]

    def reduction(self):
        return [f["reduction"] for f in self]

    def module_name(self):
        return [f["module"] for f in self]


def check_out_indices(out_indices, num_layers, features_only):
    """out_indices as a sorted tuple of distinct stage numbers (default: every stage)."""
    if out_indices is None:
        return tuple(range(num_layers))
    if not features_only:
        raise ValueError("out_indices: only a features_only=True model returns stage maps; "
                         f"got out_indices={out_indices!r} without it")
    ok = isinstance(out_indices, (tuple, list)) and out_indices and all(
        isinstance(i, (int, np.integer)) and not isinstance(i, bool)
        and -num_layers <= i < num_layers for i in out_indices)
    idx = sorted({int(i) % num_layers for i in out_indices}) if ok else []
    if not ok or len(idx) != len(out_indices):
        raise ValueError(f"out_indices: expected distinct stage numbers in 0..{num_layers - 1}"
                         f" (or negative from the end), got {out_indices!r}")
    return tuple(idx)


def _describe(v):
    return f"{type(v).__name__} of {len(v)}" if isinstance(v, (list, tuple)) else \
        type(v).__name__
