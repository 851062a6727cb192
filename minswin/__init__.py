"""minswin: the Swin Transformer from scratch in NumPy/CuPy, every backward by hand."""
