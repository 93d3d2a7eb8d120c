"""Bring weights from PyTorch: a ``.pth`` state_dict file to an xpgrad ``.npz`` checkpoint.

    xpgrad convert resnet18.pth resnet18.npz          # or: python -m nn.convert resnet18.pth resnet18.npz
    model = nn.models.resnet18(); model.load_state_dict(nn.load("resnet18.npz")); model.eval()

The zoo's torchvision-style names (``features.N``, ``layer1.0.conv1``, ``fc``, ...) make a torchvision
``state_dict`` load by name. The ``.pth`` file is read with ``torch.load(weights_only=True)``, which refuses
pickled code and anything but tensors and plain containers; the result is written with :func:`nn.save`,
which never pickles. Needs torch (only for reading the ``.pth`` file).

Only plain dense CPU tensors whose dtype NumPy has are converted (bfloat16 becomes float32); a sparse, nested,
quantized or meta tensor, or a dtype such as float8 or complex32, raises :class:`CheckpointError` naming the
entry and what it is, and so does a key that is not a string.
"""
from __future__ import annotations

import math
import os
import sys

from .serialization import CheckpointError, save

__all__ = ["torch_to_npz"]

_WRAPPERS = ("state_dict", "model_state_dict", "model")     # common checkpoint dicts holding the weights

# the torch dtypes with a NumPy twin (by name: newer unsigned ones are missing from older torch); bfloat16 is
# widened to float32. Every other dtype (float8 kinds, complex32, quantized, bits, ...) is refused.
_DTYPES = ("float16", "float32", "float64", "bfloat16", "int8", "int16", "int32", "int64", "uint8", "uint16",
           "uint32", "uint64", "bool", "complex64", "complex128")


def _unsupported(torch, t) -> str | None:
    """What makes tensor ``t`` impossible to write as a NumPy array, or None when nothing does."""
    if t.is_nested:
        return "a nested tensor"
    if t.layout != torch.strided:
        return f"a {str(t.layout).removeprefix('torch.')} tensor (densify it with .to_dense() before saving)"
    if t.is_quantized:
        return f"a quantized tensor ({t.dtype}; dequantize it with .dequantize() before saving)"
    if t.is_meta:
        return "a meta tensor, which holds no data"
    if t.dtype not in {getattr(torch, name) for name in _DTYPES if hasattr(torch, name)}:
        return f"a tensor of dtype {t.dtype}, which NumPy has no equivalent of"
    return None


def _unwrap(obj, key: str | None, src: str):
    if key is not None:
        if not hasattr(obj, "keys") or key not in obj:
            raise CheckpointError(f"convert: {src!r} has no entry {key!r}")
        return obj[key]
    for k in _WRAPPERS:
        if hasattr(obj, "keys") and k in obj and hasattr(obj[k], "keys"):
            return obj[k]
    return obj


def torch_to_npz(src: str, dst: str, key: str | None = None) -> dict[str, tuple]:
    """Convert the PyTorch state_dict in ``src`` to an npz checkpoint at ``dst``; returns ``{name: shape}``.

    Args:
        src: a file written by ``torch.save(model.state_dict(), src)`` (or a checkpoint dict holding one under
            ``state_dict``/``model_state_dict``/``model``, or under ``key``).
        dst: the ``.npz`` path to write (atomically; nothing is written on error).
        key: the entry of ``src`` holding the state_dict, when it is not one of the usual ones.

    Raises:
        ImportError: torch is not installed.
        CheckpointError: the file is not a weights-only state_dict of tensors.
    """
    try:
        import torch
    except ImportError as exc:
        raise ImportError("convert: reading a .pth file needs torch (pip install torch)") from exc
    try:
        obj = torch.load(src, map_location="cpu", weights_only=True)
    except OSError:                  # missing, a folder, unreadable: the operating system's reason says it best
        raise
    except Exception as exc:  # noqa: BLE001  (torch's unpickling errors have many types)
        raise CheckpointError(f"convert: {src!r} is not a weights-only PyTorch file ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
    state = _unwrap(obj, key, src)
    if not hasattr(state, "items"):
        raise CheckpointError(f"convert: {src!r} holds a {type(state).__name__}, not a state_dict (name -> tensor)")
    arrays = {}
    for name, value in state.items():
        if not isinstance(name, str):
            raise CheckpointError(f"convert: key {name!r} of {src!r} is of type {type(name).__name__}, not a string "
                                  "(a state_dict maps parameter names to tensors)")
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"convert: entry {name!r} of {src!r} is a {type(value).__name__}, not a tensor")
        problem = _unsupported(torch, value)
        if problem is not None:
            raise CheckpointError(f"convert: entry {name!r} of {src!r} is {problem}; only dense tensors of a "
                                  "NumPy dtype can be converted")
        t = value.detach().cpu().resolve_conj().resolve_neg()
        if t.dtype == torch.bfloat16:            # NumPy has no bfloat16
            t = t.float()
        arrays[name] = t.numpy().copy()
    save(arrays, dst)
    return {k: tuple(v.shape) for k, v in arrays.items()}


def main(argv=None, prog: str = "xpgrad convert") -> int:
    """The command line (``xpgrad convert``, or ``python -m nn.convert``, which passes its ``prog``). Bad
    arguments (an output folder that does not exist, say) raise :class:`xpgrad.args.UsageError` before
    anything is read; :func:`xpgrad.cli.run` prints it and what :func:`torch_to_npz` raises as one line."""
    from xpgrad.args import ArgumentParser, writable_file
    p = ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("src", help="PyTorch .pth file holding a state_dict")
    p.add_argument("dst", type=writable_file, help="xpgrad .npz file to write (its folder must exist)")
    p.add_argument("--key", default=None, help="entry of the file that holds the state_dict")
    args = p.parse_args(argv)
    if os.path.abspath(args.src) == os.path.abspath(args.dst):
        p.error("src and dst are the same file")
    shapes = torch_to_npz(args.src, args.dst, args.key)
    print(f"{len(shapes)} tensors, {sum(math.prod(s) for s in shapes.values()):,} values written to {args.dst}")
    return 0


if __name__ == "__main__":
    from xpgrad.cli import run
    sys.exit(run(lambda argv: main(argv, prog="python -m nn.convert"), None, "python -m nn.convert"))
