"""Exercise: the backward pass of nearest-neighbour upsampling (tutorial 12's feature pyramid).

The forward (minswin/ops/upsample.py):

    full = x repeated f times down and f times across     (B, h*f, w*f, C)
    out  = full[:, :H, :W]                                 (B, H, W, C), cropped

so out[b, r, c] = x[b, r // f, c // f]: each cell of x is copied into an f x f block.

Shapes: x (B, h, w, C); dout (B, H, W, C) with H <= h*f, W <= w*f.
The cache (an UpsampleCache) holds
    cache.in_shape   (B, h, w, C)   the shape of x
    cache.factor     f

Return dx, shaped like x.
"""
import numpy as np  # noqa: F401


def upsample_backward(dout, cache):
    B, h, w, C = cache.in_shape
    f = cache.factor
    # YOUR CODE HERE: undo the crop (zeros where cells were dropped), then give each cell of x
    # what its f x f copies received
    raise NotImplementedError(
        f"upsample_backward: compute dx {cache.in_shape} = (B, h, w, C) from dout "
        f"{tuple(dout.shape)} and the factor f = {f}")


# Check it:  minswin exercise check upsample_backward ex_upsample_backward.py
#       or:  python ex_upsample_backward.py
# Expected: each relative error <= 1e-7 against central differences (a right answer gives
# about 1e-10 or better) and <= 1e-9 against minswin's backward; above 1e-4 means a bug.
if __name__ == "__main__":
    from minswin.exercises import check_file
    raise SystemExit(check_file("upsample_backward", __file__))
