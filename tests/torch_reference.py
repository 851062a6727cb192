"""A small Swin Transformer v1 in plain PyTorch, written from SPEC.md: the test oracle.

Only the test suite imports this file (torch is never a dependency of `minswin`). It is kept
deliberately literal, in the official code's style and tensor layout, so that it is an
independent second implementation rather than a port of minswin's NumPy code:

* official semantics (SPEC 1-11): pre-norm blocks, roll(-s) before the window partition, the
  -100 mask labelled on the shifted grid with the slices (0, -M), (-M, -s), (-s, None), the
  relative position index, scale on q, bias then mask then softmax, exact-erf GELU,
  LayerNorm eps 1e-5, patch merging x0, x1, x2, x3 at the end of stages 0..L-2, final norm,
  mean pool, head; the shrink rule when a block is built (min(resolution) <= M: window =
  min(resolution), shift 0);
* the det/tv rule for maps that are not multiples of the window (SPEC 13): after LN1 pad
  bottom/right to multiples of M, roll, mask on the padded grid, un-roll, crop; per axis the
  shift is 0 where one window covers the padded axis; the image is zero-padded to a multiple
  of the patch and odd maps are padded before merging.

Feature maps are (B, H, W, C) channels-last, like minswin's. state_dict keys are the official
names, so a minswin `state_dict()` loads with `load_state_dict`; the relative position index
is a non-persistent buffer (minswin never stores it).
"""
import torch
import torch.nn.functional as F
from torch import nn

MASK_VALUE = -100.0   # official: masked_fill(attn_mask != 0, float(-100.0))


# ---------------------------------------------------------------------------- constants

def relative_position_index(M):
    """(N, N) int64: index[i, j] = (dr + M - 1) * (2M - 1) + (dc + M - 1), query minus key."""
    coords = torch.stack(torch.meshgrid(torch.arange(M), torch.arange(M), indexing="ij"))
    coords = torch.flatten(coords, 1)                        # (2, N)
    rel = coords[:, :, None] - coords[:, None, :]            # (2, N, N)
    rel = rel.permute(1, 2, 0).contiguous()                  # (N, N, 2)
    rel[:, :, 0] += M - 1
    rel[:, :, 1] += M - 1
    rel[:, :, 0] *= 2 * M - 1
    return rel.sum(-1)                                       # (N, N)


def window_partition(x, M):
    """(B, H, W, C) -> (B*nW, M, M, C), batch-major then row-major windows."""
    B, H, W, C = x.shape
    x = x.view(B, H // M, M, W // M, M, C)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, M, M, C)


def window_reverse(windows, M, H, W):
    """(B*nW, M, M, C) -> (B, H, W, C)."""
    B = int(windows.shape[0] / (H * W / M / M))
    x = windows.view(B, H // M, W // M, M, M, -1)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(B, H, W, -1)


def shift_mask(Hp, Wp, M, sh, sw, dtype=torch.float64):
    """(nW, N, N) of 0 / -100 on the (padded) Hp x Wp grid, labels on the shifted frame.

    Written as the official/tv loop: three bands per axis, cnt = 0..8, h outer and w inner.
    With a zero shift on one axis the slices (0,-M), (-M,-0), (-0,None) collapse to one band
    because the last slice covers (and relabels) the whole axis, as in torchvision.
    """
    img_mask = torch.zeros((1, Hp, Wp, 1), dtype=dtype)
    h_slices = (slice(0, -M), slice(-M, -sh), slice(-sh, None))
    w_slices = (slice(0, -M), slice(-M, -sw), slice(-sw, None))
    cnt = 0
    for h in h_slices:
        for w in w_slices:
            img_mask[:, h, w, :] = cnt
            cnt += 1
    mask_windows = window_partition(img_mask, M).view(-1, M * M)       # (nW, N)
    attn_mask = mask_windows.unsqueeze(1) - mask_windows.unsqueeze(2)  # (nW, N, N)
    return attn_mask.masked_fill(attn_mask != 0, MASK_VALUE).masked_fill(attn_mask == 0, 0.0)


# ---------------------------------------------------------------------------- modules

class WindowAttention(nn.Module):
    def __init__(self, dim, M, num_heads):
        super().__init__()
        self.dim, self.M, self.num_heads = dim, M, num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * M - 1) ** 2,
                                                                     num_heads))
        self.register_buffer("relative_position_index", relative_position_index(M),
                             persistent=False)
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)

    def rel_bias(self):
        N = self.M * self.M
        b = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return b.view(N, N, -1).permute(2, 0, 1).contiguous()            # (nH, N, N)

    def forward(self, x, mask=None):
        """x (B_, N, C); mask (nW, N, N) or None."""
        B_, N, C = x.shape
        nH = self.num_heads
        qkv = self.qkv(x).reshape(B_, N, 3, nH, C // nH).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]                                  # (B_, nH, N, d)
        q = q * self.scale
        attn = q @ k.transpose(-2, -1)                                    # (B_, nH, N, N)
        attn = attn + self.rel_bias().unsqueeze(0)
        if mask is not None:
            nW = mask.shape[0]
            attn = attn.view(B_ // nW, nW, nH, N, N) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, nH, N, N)
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B_, N, C)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="none"))


def official_shrink(resolution, M, s):
    """Official SwinTransformerBlock.__init__: a window as big as the map, and no shift."""
    if min(resolution) <= M:
        return min(resolution), 0
    return M, s


class SwinBlock(nn.Module):
    def __init__(self, dim, resolution, num_heads, M, s, mlp_ratio=4.0):
        super().__init__()
        self.M, self.s = official_shrink(resolution, M, s)
        self.resolution = tuple(resolution)
        # at other sizes (tv): the block's own shift, cut to fit a window that shrank
        self.s_other = s if self.M == M else (self.M // 2 if s else 0)
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = WindowAttention(dim, self.M, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        """(B, H, W, C) -> (B, H, W, C), padding as det/tv when H, W are not multiples of M."""
        B, H, W, C = x.shape
        M = self.M
        shortcut = x
        x = self.norm1(x)
        pad_b, pad_r = (M - H % M) % M, (M - W % M) % M
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))                         # (B, Hp, Wp, C)
        Hp, Wp = H + pad_b, W + pad_r
        s = self.s if (H, W) == self.resolution else self.s_other       # official at its size
        sh = 0 if M >= Hp else s                                         # tv, per axis
        sw = 0 if M >= Wp else s
        if sh or sw:
            x = torch.roll(x, shifts=(-sh, -sw), dims=(1, 2))
            mask = shift_mask(Hp, Wp, M, sh, sw, x.dtype)
        else:
            mask = None
        win = window_partition(x, M).view(-1, M * M, C)                  # (B*nW, N, C)
        win = self.attn(win, mask)
        x = window_reverse(win.view(-1, M, M, C), M, Hp, Wp)             # (B, Hp, Wp, C)
        if sh or sw:
            x = torch.roll(x, shifts=(sh, sw), dims=(1, 2))
        x = x[:, :H, :W, :]
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim, eps=1e-5)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x):
        B, H, W, C = x.shape
        x = F.pad(x, (0, 0, 0, W % 2, 0, H % 2))                         # odd: bottom/right
        x0 = x[:, 0::2, 0::2, :]
        x1 = x[:, 1::2, 0::2, :]
        x2 = x[:, 0::2, 1::2, :]
        x3 = x[:, 1::2, 1::2, :]
        x = torch.cat([x0, x1, x2, x3], -1)                              # (B, h, w, 4C)
        return self.reduction(self.norm(x))


class BasicLayer(nn.Module):
    def __init__(self, dim, resolution, depth, num_heads, M, mlp_ratio, downsample):
        super().__init__()
        self.blocks = nn.ModuleList([
            SwinBlock(dim, resolution, num_heads, M, 0 if j % 2 == 0 else M // 2, mlp_ratio)
            for j in range(depth)])
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x):
        for blk in self.blocks:
            x = blk(x)
        if self.downsample is not None:
            x = self.downsample(x)
        return x


class PatchEmbed(nn.Module):
    def __init__(self, patch, in_chans, dim):
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim, eps=1e-5)

    def forward(self, x):
        """x (B, H, W, Cin) channels-last -> (B, ceil(H/p), ceil(W/p), C)."""
        x = x.permute(0, 3, 1, 2)                                        # (B, Cin, H, W)
        H, W = x.shape[2:]
        p = self.patch
        x = F.pad(x, (0, (p - W % p) % p, 0, (p - H % p) % p))           # det: right, bottom
        x = self.proj(x).permute(0, 2, 3, 1)                             # (B, h, w, C)
        return self.norm(x)


class SwinTransformer(nn.Module):
    def __init__(self, img_size=224, patch_size=4, in_chans=3, num_classes=1000, embed_dim=96,
                 depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7, mlp_ratio=4.0):
        super().__init__()
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        H, W = (img_size, img_size) if isinstance(img_size, int) else img_size
        gh, gw = H // patch_size, W // patch_size           # official: (H, W) pairs divide
        L = len(depths)
        self.layers = nn.ModuleList([
            BasicLayer(embed_dim * 2 ** i, (gh // 2 ** i, gw // 2 ** i), depths[i],
                       num_heads[i], window_size, mlp_ratio, i < L - 1)
            for i in range(L)])
        self.norm = nn.LayerNorm(embed_dim * 2 ** (L - 1), eps=1e-5)
        self.head = nn.Linear(embed_dim * 2 ** (L - 1), num_classes)

    def forward(self, x):
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        x = self.norm(x)                                                 # (B, h, w, 8C)
        return self.head(x.mean(dim=(1, 2)))


def from_config(config):
    """Build the reference from a minswin SwinConfig (any object with its fields)."""
    return SwinTransformer(config.img_size, config.patch_size, config.in_chans,
                           config.num_classes, config.embed_dim, tuple(config.depths),
                           tuple(config.num_heads), config.window_size, config.mlp_ratio)
