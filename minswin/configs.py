"""Model configurations: the official Swin v1 and V2 variants and small teaching models.

Fields follow the official `SwinTransformer.__init__` argument names, so that a config reads
like the official one.
"""
from dataclasses import asdict, dataclass, fields, replace

from .checks import check_positive_int


def image_size(name, v):
    """img_size as minswin keeps it: a positive int for a square image, or a tuple (H, W) of
    two positive ints that differ (a square pair becomes its int, so that (64, 64) and 64 are
    the same model)."""
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name}: expected a positive integer or a pair (H, W) of them, "
                             f"got {v!r}")
        H, W = (check_positive_int(f"{name}[{i}]", s) for i, s in enumerate(v))
        return H if H == W else (H, W)
    return check_positive_int(name, v)


@dataclass(frozen=True)
class SwinConfig:
    img_size: int = 224                      # or (H, W): the official and timm's non-square
    patch_size: int = 4
    in_chans: int = 3
    num_classes: int = 1000
    embed_dim: int = 96
    depths: tuple = (2, 2, 6, 2)
    num_heads: tuple = (3, 6, 12, 24)
    window_size: int = 7
    mlp_ratio: float = 4.0
    drop_path_rate: float = 0.2

    version = 1                              # Swin v1 (SwinV2Config: 2); not a field

    def __post_init__(self):
        # types and ranges first, then how the fields fit together
        object.__setattr__(self, "img_size", image_size("img_size", self.img_size))
        for name in ("patch_size", "in_chans", "embed_dim", "window_size"):
            check_positive_int(name, getattr(self, name))
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) \
                or self.num_classes < 0:
            raise ValueError(f"num_classes: expected a non-negative integer (0: no head, the "
                             f"model returns pooled features), got {self.num_classes!r}")
        for name in ("depths", "num_heads"):
            v = getattr(self, name)
            if not isinstance(v, (tuple, list)) or not v:
                raise ValueError(f"{name}: expected a non-empty tuple of positive integers, "
                                 f"one per stage, got {v!r}")
            for i, n in enumerate(v):
                check_positive_int(f"{name}[{i}]", n)
        if isinstance(self.mlp_ratio, bool) or not isinstance(self.mlp_ratio, (int, float)) \
                or not 0 < self.mlp_ratio < float("inf"):
            raise ValueError(f"mlp_ratio: expected a positive number, got {self.mlp_ratio!r}")
        if int(self.embed_dim * self.mlp_ratio) < 1:       # the narrowest MLP: stage 0's
            raise ValueError(f"mlp_ratio: expected a ratio that gives every MLP a hidden "
                             f"layer (embed_dim {self.embed_dim} * mlp_ratio rounds down to "
                             f"at least 1), got {self.mlp_ratio!r}")
        if isinstance(self.drop_path_rate, bool) \
                or not isinstance(self.drop_path_rate, (int, float)) \
                or not 0 <= self.drop_path_rate < 1:
            raise ValueError(f"drop_path_rate: expected a number in [0, 1), got "
                             f"{self.drop_path_rate!r}")
        if len(self.depths) != len(self.num_heads):
            raise ValueError(f"num_heads: expected one entry per stage ({len(self.depths)}), "
                             f"got {self.num_heads}")
        for i, (dim, h) in enumerate(zip(self.stage_dims, self.num_heads)):
            if dim % h:
                raise ValueError(f"num_heads: stage {i} has width {dim}, which {h} heads do "
                                 "not divide")

    @property
    def img_hw(self):
        """(H, W) of the image the model is built for: img_size, as a pair."""
        s = self.img_size
        return (s, s) if isinstance(s, int) else s

    @property
    def img_name(self):
        """The size as people write it: '224' for a square, '64x128' for H x W."""
        H, W = self.img_hw
        return f"{H}" if H == W else f"{H}x{W}"

    def stage_resolutions(self):
        """The (H, W) token map each stage is built for: ceil(img / patch), then halved (up)
        at each merging. The official sizes divide exactly; others are padded, so they round
        up."""
        h, w = (-(-s // self.patch_size) for s in self.img_hw)
        return tuple((-(-h // 2 ** i), -(-w // 2 ** i)) for i in range(self.num_layers))

    @property
    def num_layers(self):
        return len(self.depths)

    @property
    def stage_dims(self):
        """The token width C of each stage: embed_dim, doubled by every patch merging."""
        return tuple(self.embed_dim * 2 ** i for i in range(self.num_layers))

    @property
    def num_features(self):
        """The width of the last stage, which the head reads."""
        return self.stage_dims[-1]

    def as_dict(self):
        return asdict(self)


@dataclass(frozen=True)
class SwinV2Config(SwinConfig):
    """Swin V2: the v1 fields plus the window each stage was pre-trained with (0 = none), which
    sets the normalisation of the continuous position bias's coordinates (docs/semantics.md,
    section 6)."""
    pretrained_window_sizes: tuple = None    # None: 0 for every stage

    version = 2                              # a class attribute, not a field

    def __post_init__(self):
        super().__post_init__()
        p = self.pretrained_window_sizes
        if p is None:
            return
        if not isinstance(p, (tuple, list)) or len(p) != self.num_layers or any(
                isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in p):
            raise ValueError(f"pretrained_window_sizes: expected {self.num_layers} integers >= 0"
                             f", one per stage (0 = none), got {p!r}")
        object.__setattr__(self, "pretrained_window_sizes", tuple(p))

    @property
    def pretrained_windows(self):
        """pretrained_window_sizes with None spelled out: one entry per stage, 0 = none."""
        p = self.pretrained_window_sizes
        return (0,) * self.num_layers if p is None else p



CONFIGS = {
    # official configs/swin/*.yaml
    "swin_t": dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24),
                   drop_path_rate=0.2),
    "swin_s": dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24),
                   drop_path_rate=0.3),
    "swin_b": dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32),
                   drop_path_rate=0.5),
    "swin_l": dict(embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48),
                   drop_path_rate=0.2),
    "swin_b_384": dict(img_size=384, window_size=12, embed_dim=128, depths=(2, 2, 18, 2),
                       num_heads=(4, 8, 16, 32), drop_path_rate=0.5),
    "swin_l_384": dict(img_size=384, window_size=12, embed_dim=192, depths=(2, 2, 18, 2),
                       num_heads=(6, 12, 24, 48), drop_path_rate=0.2),
    # teaching: two stages on 32x32 images; 8x8 tokens, 4x4 windows (4 windows, shift 2),
    # then 4x4 tokens where the window covers the whole map
    "swin_micro": dict(img_size=32, patch_size=4, embed_dim=48, depths=(2, 2),
                       num_heads=(3, 6), window_size=4, drop_path_rate=0.1),
    # `minswin train` default: the 8x8 digits upsampled to 16x16, patch 2 -> 8x8 tokens,
    # 4x4 windows (shifted by 2), then 4x4 tokens in one window; see
    # benchmarks/results/train_digits.md
    "swin_digits": dict(img_size=16, patch_size=2, embed_dim=48, depths=(2, 2),
                        num_heads=(3, 6), window_size=4, drop_path_rate=0.1),
    # tutorial 12 and `minswin train --task segment`: the backbone for 32x32 digit canvases,
    # swin_digits with a third stage (its first two start from swin_digits' weights); patch 2
    # -> 16x16 tokens (4x4 windows, shifted), 8x8 (shifted), then 4x4 in one window
    "swin_canvas": dict(img_size=32, patch_size=2, embed_dim=48, depths=(2, 2, 2),
                        num_heads=(3, 6, 12), window_size=4, drop_path_rate=0.1),
    # Swin V2, official configs/swinv2/swinv2_*_patch4_window{8,16}_256.yaml (timm
    # swinv2_{tiny,small,base}_window{8,16}_256)
    "swinv2_t": dict(img_size=256, window_size=8, embed_dim=96, depths=(2, 2, 6, 2),
                     num_heads=(3, 6, 12, 24), drop_path_rate=0.2),
    "swinv2_s": dict(img_size=256, window_size=8, embed_dim=96, depths=(2, 2, 18, 2),
                     num_heads=(3, 6, 12, 24), drop_path_rate=0.3),
    "swinv2_b": dict(img_size=256, window_size=8, embed_dim=128, depths=(2, 2, 18, 2),
                     num_heads=(4, 8, 16, 32), drop_path_rate=0.5),
    "swinv2_t_w16": dict(img_size=256, window_size=16, embed_dim=96, depths=(2, 2, 6, 2),
                         num_heads=(3, 6, 12, 24), drop_path_rate=0.2),
    "swinv2_s_w16": dict(img_size=256, window_size=16, embed_dim=96, depths=(2, 2, 18, 2),
                         num_heads=(3, 6, 12, 24), drop_path_rate=0.3),
    "swinv2_b_w16": dict(img_size=256, window_size=16, embed_dim=128, depths=(2, 2, 18, 2),
                         num_heads=(4, 8, 16, 32), drop_path_rate=0.5),
    # teaching: swin_digits with V2's blocks, for `minswin train --model swinv2_digits`
    "swinv2_digits": dict(img_size=16, patch_size=2, embed_dim=48, depths=(2, 2),
                          num_heads=(3, 6), window_size=4, drop_path_rate=0.1),
}


def get_config(name, **overrides):
    """The config called `name`, with any field replaced by `overrides`."""
    if name not in CONFIGS:
        raise ValueError(f"name: expected one of {sorted(CONFIGS)}, got {name!r}")
    cls = SwinV2Config if name.startswith("swinv2") else SwinConfig
    known = {f.name for f in fields(cls)}
    bad = sorted(set(overrides) - known)
    if bad:
        raise ValueError(f"overrides: unknown config field(s) {bad}; known: {sorted(known)}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    for k in ("depths", "num_heads", "pretrained_window_sizes"):
        if isinstance(overrides.get(k), list):
            overrides[k] = tuple(overrides[k])
    return replace(cls(**CONFIGS[name]), **overrides)
