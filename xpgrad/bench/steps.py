"""Training-step benchmarks: one Adam step (forward, cross-entropy, backward, update) of the textbook models.

MLP 784-128-10, CNN (conv 1→32 3x3 pad 1, ReLU, max-pool 2, conv 32→64 3x3 pad 1, ReLU, max-pool 2,
3136→128→10) and a 2-layer tanh RNN (input 28, hidden 128, 28 steps, last step → 10), xpgrad against
PyTorch with the same architecture, batch and data, measured in the same run.

    python -m xpgrad.bench.steps [--models mlp,cnn,rnn] [--batches 64,1024] [--quick]

Default batches: on the CPU 64 and 1024 for the MLP and 64 for the CNN and RNN; on a GPU 64 and 512.
"""
from __future__ import annotations

import argparse

import numpy as np

import autograd as ag
import backends
import nn
from xpgrad.bench.timing import emit, measure_side_by_side, try_torch
from nn.models import textbook_cnn, textbook_mlp, textbook_rnn

BUILDERS = {"mlp": textbook_mlp, "cnn": textbook_cnn, "rnn": textbook_rnn}
INPUT = {"mlp": (784,), "cnn": (1, 28, 28), "rnn": (28, 28)}


def _data(model: str, batch: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch,) + INPUT[model]).astype(np.float32)
    y = rng.integers(0, 10, batch).astype(np.int64)
    return x, y


def xpgrad_step(model: str, batch: int, device: str = "cpu"):
    ag.manual_seed(0)
    net = BUILDERS[model]().to(device)
    opt = nn.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    xh, yh = _data(model, batch)
    x, y = ag.as_tensor(xh, device=device), ag.as_tensor(yh, device=device)

    def step():
        opt.zero_grad()
        loss_fn(net(x), y).backward()
        opt.step()
    return step, backends.get_backend(device).synchronize


def torch_model(torch, model: str):
    tnn = torch.nn
    if model == "mlp":
        return tnn.Sequential(tnn.Linear(784, 128), tnn.ReLU(), tnn.Linear(128, 10))
    if model == "cnn":
        return tnn.Sequential(tnn.Conv2d(1, 32, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
                              tnn.Conv2d(32, 64, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
                              tnn.Linear(3136, 128), tnn.ReLU(), tnn.Linear(128, 10))

    class RNN(tnn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = tnn.RNN(28, 128, num_layers=2, batch_first=True)
            self.fc = tnn.Linear(128, 10)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.fc(out[:, -1])
    return RNN()


def torch_step(torch, model: str, batch: int, device: str = "cpu"):
    torch.manual_seed(0)
    net = torch_model(torch, model).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    xh, yh = _data(model, batch)
    x, y = torch.from_numpy(xh).to(device), torch.from_numpy(yh).to(device)

    def step():
        opt.zero_grad()
        loss_fn(net(x), y).backward()
        opt.step()
    return step, (torch.cuda.synchronize if device == "cuda" else None)


DEFAULT_BATCHES = {"cpu": {"mlp": (64, 1024), "cnn": (64,), "rnn": (64,)}, "cuda": {m: (64, 512) for m in BUILDERS}}


def run(models=("mlp", "cnn", "rnn"), batches=None, quick: bool = False, devices=None,
        budget: float | None = None) -> dict:
    """Time one Adam step of each model and batch size on each device (``batches=None``: the defaults above),
    ``budget`` seconds per case at most."""
    torch = try_torch()
    devices = devices or (["cpu", "cuda"] if backends.cuda_available() else ["cpu"])
    rows, ratios = [], {}
    budget = budget or (2.0 if quick else 8.0)
    for dev in devices:
        for model in models:
            for batch in batches or DEFAULT_BATCHES[dev][model]:
                case = f"{model} Adam step, batch {batch}"
                cases = [("xpgrad", xpgrad_step(model, batch, dev))]
                if torch is not None and (dev == "cpu" or torch.cuda.is_available()):
                    cases.append(("torch", torch_step(torch, model, batch, dev)))
                res = measure_side_by_side([c for _, c in cases], budget_s=budget, repeat=15, block_s=0.2,
                                           pause_s=0.1)
                for (impl, _), r in zip(cases, res):
                    rows.append({"suite": "steps", "case": case, "impl": impl, "device": dev, **r})
                if len(res) == 2:
                    ratios[f"{model}_b{batch}_{dev}_xpgrad_over_torch"] = res[0]["median"] / res[1]["median"]
    return {"rows": rows, "ratios": ratios}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="mlp,cnn,rnn")
    p.add_argument("--batches", default=None, help="comma-separated batch sizes (default: per model and device)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json")
    args = p.parse_args(argv)
    batches = tuple(int(b) for b in args.batches.split(",")) if args.batches else None
    result = run(tuple(args.models.split(",")), batches, args.quick)
    emit(result, args.json)


if __name__ == "__main__":
    main()
