"""Peak memory of the textbook CNN training step (batch 64): ru_maxrss growth over 5 steps after building the
model and data, in a fresh process, measured the same way for xpgrad and PyTorch.

    PYTHONPATH=. python benchmarks/peak_memory.py xpgrad|torch
"""
import resource, sys
impl = sys.argv[1]
from xpgrad.bench.steps import xpgrad_step, torch_step
if impl == "torch":
    import torch
    torch.set_num_threads(2)
    step, _ = torch_step(torch, "cnn", 64)
else:
    step, _ = xpgrad_step("cnn", 64)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for _ in range(5):
    step()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"{impl}: maxrss before steps {before/1024:.1f} MiB, after 5 steps {after/1024:.1f} MiB, growth {(after-before)/1024:.1f} MiB")
