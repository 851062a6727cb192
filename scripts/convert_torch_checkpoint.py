"""Convert a PyTorch `.pth` checkpoint (official, timm or torchvision Swin) to safetensors.

minswin never unpickles files. This script does, once, with torch's restricted loader
(`weights_only=True`, which refuses arbitrary code) on a file you trust, and writes plain
tensors that minswin loads:

    pip install torch safetensors
    python scripts/convert_torch_checkpoint.py swin_tiny_patch4_window7_224.pth swin_t.safetensors

Official checkpoints keep their weights under the "model" key; that nesting is unwrapped.
Key names are kept: `model.load_state_dict` maps timm/torchvision names itself.
"""
import sys


def main(src, dst):
    import torch
    from safetensors.numpy import save_file

    obj = torch.load(src, map_location="cpu", weights_only=True)
    for key in ("model", "state_dict", "model_state"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    arrays = {k: v.detach().cpu().contiguous().numpy() for k, v in obj.items()
              if hasattr(v, "detach")}
    save_file(arrays, dst)
    print(f"wrote {len(arrays)} tensors to {dst}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python scripts/convert_torch_checkpoint.py IN.pth OUT.safetensors")
    main(sys.argv[1], sys.argv[2])
