"""The recipe of ``xpgrad train`` (:mod:`xpgrad.train`) in PyTorch, to measure xpgrad's accuracy and speed side by side.

    xpgrad torch-train --model cnn --dataset fashion-mnist --epochs 10
    xpgrad train       --model cnn --dataset fashion-mnist --epochs 10

Same architectures (parameter names and shapes of the xpgrad models), same data arrays (read by
``nn.data``, scaled to [-1, 1]), same batch order (the permutation ``numpy.random.default_rng(seed)`` draws
each epoch, exactly as xpgrad's ``DataLoader(shuffle=True, seed=seed)``), same optimizer and learning rate.
With ``--init xpgrad`` (the default) the PyTorch model starts from the very weights xpgrad initialises with
``autograd.manual_seed(seed)``, so the two runs differ only in floating-point rounding; ``--init torch`` uses
PyTorch's own initialisation (``torch.manual_seed(seed)``). Skips with a message when torch is missing.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np

from xpgrad.args import (ArgumentParser, existing_dir, nonneg_float, nonneg_int, positive_float, positive_int,
                         torch_device, writable_dir)
from xpgrad.bench.timing import steady_malloc
from xpgrad.train import DATASETS, HEADER, eval_batch_size, format_row, layout, load_arrays
from nn.training import OPTIMIZERS

TORCH_MODELS = ("mlp", "cnn", "rnn", "lstm", "gru", "lenet5", "resnet18")


def torch_model(torch, name: str):
    """The PyTorch twin of ``xpgrad.train.build_model(name)`` (same state_dict keys and shapes)."""
    tnn = torch.nn
    if name == "mlp":
        return tnn.Sequential(tnn.Flatten(), tnn.Linear(784, 128), tnn.ReLU(), tnn.Linear(128, 10))
    if name == "cnn":
        return tnn.Sequential(tnn.Conv2d(1, 32, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
                              tnn.Conv2d(32, 64, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
                              tnn.Linear(64 * 7 * 7, 128), tnn.ReLU(), tnn.Linear(128, 10))
    if name == "lenet5":
        return tnn.Sequential(tnn.Conv2d(1, 6, 5, padding=2), tnn.Sigmoid(), tnn.AvgPool2d(2, 2),
                              tnn.Conv2d(6, 16, 5), tnn.Sigmoid(), tnn.AvgPool2d(2, 2), tnn.Flatten(),
                              tnn.Linear(400, 120), tnn.Sigmoid(), tnn.Linear(120, 84), tnn.Sigmoid(),
                              tnn.Linear(84, 10))
    if name in ("rnn", "lstm", "gru"):
        cls = {"rnn": tnn.RNN, "lstm": tnn.LSTM, "gru": tnn.GRU}[name]

        class RecurrentClassifier(tnn.Module):
            def __init__(self):
                super().__init__()
                self.rnn = cls(28, 128, num_layers=2, batch_first=True)
                self.fc = tnn.Linear(128, 10)

            def forward(self, x):
                out, _ = self.rnn(x)
                return self.fc(out[:, -1])
        return RecurrentClassifier()
    if name == "resnet18":
        class Residual(tnn.Module):
            def __init__(self, cin, cout, stride=1):
                super().__init__()
                self.conv1 = tnn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
                self.bn1 = tnn.BatchNorm2d(cout)
                self.conv2 = tnn.Conv2d(cout, cout, 3, padding=1, bias=False)
                self.bn2 = tnn.BatchNorm2d(cout)
                self.relu = tnn.ReLU()
                self.downsample = None
                if stride != 1 or cin != cout:
                    self.downsample = tnn.Sequential(tnn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                                     tnn.BatchNorm2d(cout))

            def forward(self, x):
                y = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
                return self.relu(y + (x if self.downsample is None else self.downsample(x)))
        stages, c = [], 64
        for i, out in enumerate((64, 128, 256, 512)):
            stages.append(tnn.Sequential(Residual(c, out, 1 if i == 0 else 2), Residual(out, out)))
            c = out
        return tnn.Sequential(tnn.Conv2d(1, 64, 7, stride=2, padding=3, bias=False), tnn.BatchNorm2d(64),
                              tnn.ReLU(), tnn.MaxPool2d(3, 2, 1), *stages, tnn.AdaptiveAvgPool2d(1), tnn.Flatten(),
                              tnn.Linear(512, 10))
    raise ValueError(f"no PyTorch twin for model {name!r}; choose one of {TORCH_MODELS}")


def copy_xpgrad_init(torch, tmodel, name: str, seed: int) -> None:
    """Load the weights xpgrad initialises (``manual_seed(seed)``) into the PyTorch model."""
    import autograd as ag
    from xpgrad.train import build_model
    ag.manual_seed(seed)
    state = {k: torch.from_numpy(np.ascontiguousarray(v.numpy())) for k, v in build_model(name).state_dict().items()}
    missing, unexpected = tmodel.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise RuntimeError(f"xpgrad and PyTorch {name} models differ: missing {missing}, unexpected {unexpected}")


def torch_optimizer(torch, name: str, params, lr, weight_decay):
    cls_name, fixed, default_lr = OPTIMIZERS[name]
    kw = dict(fixed, lr=default_lr if lr is None else lr)
    if weight_decay is not None:
        kw["weight_decay"] = weight_decay
    return getattr(torch.optim, cls_name)(params, **kw)


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(prog="xpgrad torch-train", description=__doc__.split("\n\n")[0],
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", choices=TORCH_MODELS, default="cnn")
    p.add_argument("--dataset", choices=DATASETS, default="fashion-mnist")
    p.add_argument("--device", type=torch_device, default="cpu", help="cpu or cuda")
    p.add_argument("--epochs", type=nonneg_int, default=10)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--lr", type=positive_float, default=None)
    p.add_argument("--weight-decay", type=nonneg_float, default=None)
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adam")
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument("--limit", type=positive_int, default=None)
    p.add_argument("--test-limit", type=positive_int, default=None)
    p.add_argument("--data-root", type=existing_dir, default=None)
    p.add_argument("--no-download", action="store_true")
    p.add_argument("--init", choices=("xpgrad", "torch"), default="xpgrad",
                   help="start from xpgrad's initial weights (same seed) or PyTorch's own")
    p.add_argument("--threads", type=positive_int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--out", type=writable_dir, default=None,
                   help="directory for torch_metrics.json (default runs/<model>-<dataset>)")
    args = p.parse_args(argv)
    if args.out is None:
        try:
            args.out = writable_dir(os.path.join("runs", f"{args.model}-{args.dataset}"))
        except argparse.ArgumentTypeError as exc:
            p.error(f"--out (default): {exc}")
    return args


def main(argv=None) -> dict | None:
    args = parse_args(argv)
    try:
        import torch
    except ImportError:
        print("xpgrad torch-train: PyTorch is not installed (pip install -e '.[torch]'); skipping.")
        return None
    steady_malloc()         # PyTorch at its best: no page faults per step (see xpgrad.bench.timing)
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)

    x_train, y_train = load_arrays(args.dataset, "train", args.data_root, args.limit, not args.no_download)
    x_test, y_test = load_arrays(args.dataset, "test", args.data_root, args.test_limit, not args.no_download)
    xt = torch.from_numpy(np.ascontiguousarray(layout(args.model, x_train))).to(dev)
    yt = torch.from_numpy(y_train).to(dev)
    xs = torch.from_numpy(np.ascontiguousarray(layout(args.model, x_test))).to(dev)
    ys = torch.from_numpy(y_test).to(dev)

    torch.manual_seed(args.seed)
    model = torch_model(torch, args.model)
    if args.init == "xpgrad":
        copy_xpgrad_init(torch, model, args.model, args.seed)
    model.to(dev)
    opt = torch_optimizer(torch, args.optimizer, model.parameters(), args.lr, args.weight_decay)
    lr = opt.param_groups[0]["lr"]
    loss_fn = torch.nn.CrossEntropyLoss()
    n = len(xt)
    order_rng = np.random.default_rng(args.seed)     # the DataLoader(shuffle=True, seed=seed) permutations

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    eval_batch = eval_batch_size(dev.type)      # as xpgrad train's evaluation batches

    def evaluate():
        model.eval()
        correct = torch.zeros((), dtype=torch.int64, device=dev)
        loss = torch.zeros((), dtype=torch.float64, device=dev)
        with torch.no_grad():
            for s in range(0, len(xs), eval_batch):
                out = model(xs[s:s + eval_batch])
                loss += loss_fn(out, ys[s:s + eval_batch]).double() * len(out)
                correct += (out.argmax(1) == ys[s:s + eval_batch]).sum()
        model.train()
        return loss.item() / len(xs), correct.item() / len(xs)

    nparams = sum(p.numel() for p in model.parameters())
    print(f"PyTorch {torch.__version__} {args.model} on {args.dataset} ({dev}, {torch.get_num_threads()} threads): "
          f"{n} training and {len(xs)} test samples, {nparams:,} parameters, {args.optimizer} lr {lr:g}, batch "
          f"{args.batch_size}, seed {args.seed}, init {args.init}", flush=True)
    print(HEADER, flush=True)
    history = []
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        order = torch.from_numpy(order_rng.permutation(n)).to(dev)
        loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
        correct = torch.zeros((), dtype=torch.int64, device=dev)
        for s in range(0, n, args.batch_size):
            idx = order[s:s + args.batch_size]
            xb, yb = xt[idx], yt[idx]
            out = model(xb)
            loss = loss_fn(out, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.detach().double() * len(idx)
            correct += (out.detach().argmax(1) == yb).sum()
        sync()
        train_time = time.perf_counter() - t0
        test_loss, test_acc = evaluate()
        rec = {"epoch": epoch, "train_loss": loss_sum.item() / n, "train_acc": correct.item() / n, "val_acc": None,
               "test_loss": test_loss, "test_acc": test_acc, "time": time.perf_counter() - t0,
               "train_time": train_time, "samples_per_s": n / train_time, "lr": lr}
        history.append(rec)
        print(format_row(rec), flush=True)
    final = history[-1]["test_acc"] if history else math.nan
    print(f"final test accuracy: {final:.4f} ({100 * final:.2f} %)", flush=True)
    metrics = {"framework": f"torch {torch.__version__}", "model": args.model, "dataset": args.dataset,
               "device": str(dev), "threads": torch.get_num_threads(), "optimizer": args.optimizer, "lr": lr,
               "batch_size": args.batch_size, "epochs": args.epochs, "seed": args.seed, "init": args.init,
               "limit": args.limit, "n_train": n, "n_test": len(xs), "final_test_acc": final,
               "mean_epoch_time_s": (sum(r["time"] for r in history) / len(history)) if history else None,
               "history": history}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "torch_metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    return metrics


if __name__ == "__main__":
    import sys

    from xpgrad.cli import run
    sys.exit(run(main, None, "xpgrad torch-train"))
