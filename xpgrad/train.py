"""Train a model of the zoo on MNIST or Fashion-MNIST with xpgrad: the textbook recipes, end to end.

    xpgrad train --model cnn --dataset fashion-mnist --epochs 10          # Adam 1e-3, batch 64
    xpgrad train --model mlp --device cuda --optimizer nesterov --lr 0.05
    xpgrad train --model rnn --limit 256 --epochs 1 --data-root /tmp/idx   # smoke test
    mpiexec -n 2 xpgrad train --distributed --model cnn --epochs 1          # data parallel, 2 ranks

Inputs are scaled to [-1, 1] (x / 255 * 2 - 1). The MLP sees flattened images (N, 784), the CNNs
(N, 1, 28, 28), the recurrent models 28 time steps of 28 features (N, 28, 28); AlexNet, VGG-11 and NiN see
images enlarged to 224x224 and GoogLeNet to 96x96 (nearest neighbour, which keeps the pixel values).
Prints one row per epoch (train loss and accuracy, test accuracy, epoch time, samples/s) and writes into
``--out`` (default ``runs/<model>-<dataset>``): ``metrics.json``, ``curves.png`` (needs matplotlib),
``checkpoint.npz`` (model, optimizer, history; ``--resume`` continues from it) and ``model.npz`` (the final
weights). With ``--distributed`` (under ``mpiexec -n R``) every rank trains a replica on its shard
(:class:`nn.data.DistributedSampler`, ``--batch-size`` samples per rank and step, so R times as many per step in
all) wrapped in :class:`nn.parallel.DistributedDataParallel`; metrics are means over all ranks, and only rank 0
prints and writes files. ``xpgrad torch-train`` (:mod:`xpgrad.torch_train`) runs the same recipe in PyTorch for comparison.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

import autograd as ag
import backends
import nn
from nn import parallel
from nn.data import DataLoader, DistributedSampler, TensorDataset, datasets, random_split
from nn.training import CHECKPOINT_NAME, OPTIMIZERS, DivergenceError, EarlyStopping, fit, make_optimizer, plot_history
from xpgrad.args import (ArgumentParser, device, existing_dir, nonneg_float, nonneg_int, positive_float,
                         positive_int, writable_dir)

# name -> (constructor in nn.models, keyword arguments, input layout); layouts: "flat" (N, 784),
# "image" (N, 1, 28, 28), "seq" (N, 28, 28), ("image", size) images resized to size x size.
MODELS: dict[str, tuple[str, dict, object]] = {
    "mlp": ("textbook_mlp", {}, "flat"),
    "cnn": ("textbook_cnn", {}, "image"),
    "rnn": ("textbook_rnn", {"kind": "rnn"}, "seq"),
    "lstm": ("textbook_rnn", {"kind": "lstm"}, "seq"),
    "gru": ("textbook_rnn", {"kind": "gru"}, "seq"),
    "lenet5": ("lenet5", {"in_channels": 1, "num_classes": 10}, "image"),
    "resnet18": ("resnet18", {"in_channels": 1, "num_classes": 10}, "image"),
    "alexnet": ("alexnet", {"in_channels": 1, "num_classes": 10}, ("image", 224)),
    "vgg11": ("vgg11", {"in_channels": 1, "num_classes": 10, "width_divisor": 4}, ("image", 224)),
    "nin": ("nin", {"in_channels": 1, "num_classes": 10}, ("image", 224)),
    "googlenet": ("googlenet", {"in_channels": 1, "num_classes": 10}, ("image", 96)),
}
DATASETS = ("fashion-mnist", "mnist")


def build_model(name: str) -> nn.Module:
    """The xpgrad model called ``name`` (see :data:`MODELS`)."""
    from nn import models
    fn, kwargs, _ = MODELS[name]
    return getattr(models, fn)(**kwargs)


def layout(name: str, x: np.ndarray) -> np.ndarray:
    """Images (N, 28, 28) in the layout model ``name`` expects (resizing happens per batch, see ``resize``)."""
    kind = MODELS[name][2]
    if kind == "flat":
        return x.reshape(len(x), -1)
    if kind == "seq":
        return x
    return x[:, None]


def resize_size(name: str) -> int | None:
    kind = MODELS[name][2]
    return kind[1] if isinstance(kind, tuple) else None


def resize(size: int):
    """A batch transform: nearest-neighbour resize of (N, C, H, W) arrays (NumPy or CuPy) to size x size."""
    def apply(batch):
        xp = backends.backend_of(batch).xp
        h, w = batch.shape[-2:]
        rows = xp.asarray((np.arange(size) * h) // size)
        cols = xp.asarray((np.arange(size) * w) // size)
        return batch[:, :, rows][:, :, :, cols]
    return apply


def load_arrays(dataset: str, split: str, root=None, limit: int | None = None, download: bool = True):
    """``(x, y)``: float32 images (N, 28, 28) in [-1, 1] and int64 labels, the first ``limit`` samples."""
    ds = datasets.load(dataset, split, root=root, download=download)
    images, labels = ds.images, ds.labels
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    lut = (np.arange(256, dtype=np.float64) / 255 * 2 - 1).astype(np.float32)   # x/255*2-1, one look-up a pixel
    return lut[images], labels.astype(np.int64)


def count_parameters(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(prog="xpgrad train", description=__doc__.split("\n\n")[0],
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", choices=sorted(MODELS), default="cnn")
    p.add_argument("--dataset", choices=DATASETS, default="fashion-mnist")
    p.add_argument("--device", type=device, default="cpu", help="cpu (NumPy) or cuda / cuda:N (CuPy)")
    p.add_argument("--epochs", type=nonneg_int, default=10)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--lr", type=positive_float, default=None, help="default: the optimizer's (Adam 1e-3, SGD 0.1, ...)")
    p.add_argument("--weight-decay", type=nonneg_float, default=None)
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adam")
    p.add_argument("--schedule", choices=("constant", "cosine", "step"), default="constant",
                   help="learning-rate schedule per epoch (step: x0.1 every third of the epochs)")
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument("--out", type=writable_dir, default=None, help="output directory (default runs/<model>-<dataset>)")
    p.add_argument("--limit", type=positive_int, default=None, help="use only the first N training samples")
    p.add_argument("--test-limit", type=positive_int, default=None, help="use only the first N test samples")
    p.add_argument("--val-fraction", type=float, default=0.0,
                   help="hold out this fraction of the training samples for validation")
    p.add_argument("--patience", type=positive_int, default=None,
                   help="early stopping on validation accuracy (needs --val-fraction)")
    p.add_argument("--data-root", type=existing_dir, default=None,
                   help="directory holding the IDX files (searched first)")
    p.add_argument("--no-download", action="store_true", help="never download the data set")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--progress", choices=("auto", "on", "off"), default="auto",
                   help="per-epoch progress bar (auto: when stderr is a terminal)")
    p.add_argument("--on-nan", choices=("stop", "continue"), default="stop",
                   help="a non-finite loss or weight: stop with exit status 1 (model.npz not written) or train on")
    p.add_argument("--distributed", action="store_true",
                   help="data parallel over the MPI ranks this was launched with (mpiexec -n R xpgrad train "
                        "--distributed ...): --batch-size per rank, NCCL on cuda devices (cuda -> cuda:<local rank>)")
    args = p.parse_args(argv)
    if not 0.0 <= args.val_fraction < 1.0:
        p.error("--val-fraction must be in [0, 1)")
    if args.patience is not None and args.val_fraction == 0:
        p.error("--patience needs a validation split: give --val-fraction (e.g. 0.1)")
    if args.out is None:
        try:
            args.out = writable_dir(os.path.join("runs", f"{args.model}-{args.dataset}"))
        except argparse.ArgumentTypeError as exc:
            p.error(f"--out (default): {exc}")
    return args


def _cell(v, spec: str) -> str:
    """``v`` formatted with ``spec`` (e.g. ``"9.4f"``), or a dash of the same width for None."""
    return format(v, spec) if v is not None else "-".rjust(int(spec.split(".")[0] or 0))


HEADER = f"{'epoch':>5}  {'train loss':>10}  {'train acc':>9}  {'val acc':>7}  {'test acc':>8}  " \
         f"{'time (s)':>8}  {'samples/s':>9}  {'lr':>8}"


def format_row(r: dict) -> str:
    return (f"{r['epoch']:>5}  {_cell(r['train_loss'], '10.4f')}  {_cell(r['train_acc'], '9.4f')}  "
            f"{_cell(r['val_acc'], '7.4f')}  {_cell(r['test_acc'], '8.4f')}  {r['time']:>8.1f}  "
            f"{r['samples_per_s']:>9,.0f}  {r['lr']:>8.2g}")


def make_scheduler(kind: str, opt, epochs: int):
    sched = nn.optim.lr_scheduler
    if kind == "cosine":
        return sched.CosineAnnealingLR(opt, T_max=max(1, epochs))
    if kind == "step":
        return sched.StepLR(opt, step_size=max(1, math.ceil(epochs / 3)), gamma=0.1)
    return None


def main(argv=None) -> dict | int:
    args = parse_args(argv)
    comm = None
    if args.distributed:
        comm = parallel.init(device=args.device)
        args.device = parallel.local_device(args.device)
    main_rank = comm is None or comm.rank == 0
    say = parallel.print0 if comm is not None else _print
    device = backends.get_backend(args.device)
    t_start = time.perf_counter()

    # data: whole arrays in memory (on the GPU for cuda), batches by index
    x_train, y_train = load_arrays(args.dataset, "train", args.data_root, args.limit, not args.no_download)
    x_test, y_test = load_arrays(args.dataset, "test", args.data_root, args.test_limit, not args.no_download)
    x_train, x_test = layout(args.model, x_train), layout(args.model, x_test)
    size = resize_size(args.model)
    tf = resize(size) if size else None
    train_set = TensorDataset(ag.as_tensor(x_train, device=device), ag.as_tensor(y_train, device=device), transform=tf)
    test_set = TensorDataset(ag.as_tensor(x_test, device=device), ag.as_tensor(y_test, device=device), transform=tf)
    val_loader = None
    if args.val_fraction > 0:
        train_set, val_set = random_split(train_set, [1 - args.val_fraction, args.val_fraction], seed=args.seed)
        val_loader = _eval_loader(val_set, device, comm)
    if comm is None:
        train_loader = DataLoader(train_set, args.batch_size, shuffle=True, seed=args.seed, device=device)
    else:                  # each rank its shard, reshuffled per epoch from the seed (padded to equal lengths)
        train_loader = DataLoader(train_set, args.batch_size, device=device,
                                  sampler=DistributedSampler(train_set, shuffle=True, seed=args.seed))
    test_loader = _eval_loader(test_set, device, comm)

    # model, optimizer, schedule
    ag.manual_seed(args.seed)
    model = build_model(args.model).to(device)
    if comm is not None:
        model = parallel.DistributedDataParallel(model, comm)       # rank 0's initial weights everywhere
    opt = make_optimizer(args.optimizer, model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    lr = opt.param_groups[0]["lr"]
    scheduler = make_scheduler(args.schedule, opt, args.epochs)
    stopper = EarlyStopping(args.patience, monitor="val_acc") if args.patience else None

    os.makedirs(args.out, exist_ok=True)
    ckpt = os.path.join(args.out, CHECKPOINT_NAME)
    if not args.resume and os.path.exists(ckpt) and main_rank:
        os.remove(ckpt)                        # a fresh run; --resume keeps and continues it
    if comm is not None:
        comm.barrier()
        say(f"data parallel: {comm.size} ranks ({comm.name}), {args.batch_size} samples per rank and step, "
            f"{args.batch_size * comm.size} per step in all")
    say(f"xpgrad {args.model} on {args.dataset} ({device.name}): {len(train_set)} training and {len(test_set)} "
          f"test samples, {count_parameters(model):,} parameters, {args.optimizer} lr {lr:g}, batch "
          f"{args.batch_size}, seed {args.seed}", flush=True)
    say(HEADER, flush=True)
    show = {"auto": sys.stderr.isatty(), "on": True, "off": False}[args.progress]
    try:
        history = fit(model, opt, nn.CrossEntropyLoss(), train_loader, args.epochs, val_loader=val_loader,
                      test_loader=test_loader, scheduler=scheduler, early_stopping=stopper, checkpoint_dir=args.out,
                      resume=args.resume, progress=show, verbose=False, on_nan=args.on_nan,
                      on_epoch_end=lambda epoch, rec: say(format_row(rec), flush=True))
    except DivergenceError as e:               # nothing more is written: model.npz and metrics.json stay as they were
        if main_rank:
            print(f"xpgrad train: error: {e}", file=sys.stderr, flush=True)
        return 1
    if len(history) == 0:
        raise SystemExit("no epoch was trained (--epochs 0, or the resumed checkpoint is already complete)")
    final = history.record(history.best_epoch - 1 if stopper is not None and history.best_epoch else -1)

    if main_rank:
        nn.save({"model": model.state_dict(), "model_name": args.model, "dataset": args.dataset},
                os.path.join(args.out, "model.npz"))
    world = 1 if comm is None else comm.size
    metrics = {
        "framework": "xpgrad", "model": args.model, "dataset": args.dataset, "device": device.name,
        "optimizer": args.optimizer, "lr": lr, "weight_decay": args.weight_decay, "schedule": args.schedule,
        "batch_size": args.batch_size, "world_size": world, "global_batch_size": args.batch_size * world,
        "epochs": args.epochs, "seed": args.seed, "limit": args.limit,
        "n_train": len(train_set), "n_test": len(test_set), "parameters": count_parameters(model),
        "final_test_acc": final["test_acc"], "final_test_loss": final["test_loss"],
        "mean_epoch_time_s": sum(history.time) / len(history),
        "mean_samples_per_s": sum(history.samples_per_s) / len(history),
        "total_time_s": time.perf_counter() - t_start, "history": history.to_dict(), "machine": _machine(),
    }
    if not main_rank:
        return metrics
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    try:
        plot_history(history, os.path.join(args.out, "curves.png"),
                     title=f"xpgrad {args.model} on {args.dataset}")
    except ImportError as e:
        print(f"note: curves.png not written: {e}", file=sys.stderr)
    print(f"final test accuracy: {final['test_acc']:.4f} ({100 * final['test_acc']:.2f} %)  "
          f"[written to {args.out}]", flush=True)
    return metrics


def _print(*args, **kwargs) -> None:
    print(*args, **kwargs)


def eval_batch_size(kind: str) -> int:
    """Samples per evaluation batch on a device of ``kind`` ("cpu" or "cuda"; also used by ``torch-train``).

    100 on the CPU, where bigger batches run slower per sample (the CNN's activations of 1000 images leave the
    caches, and the test set takes markedly longer than in batches of 100); 1000 on a GPU,
    which wants big launches."""
    return 100 if kind == "cpu" else 1000


def _eval_loader(dataset, device, comm) -> DataLoader:
    """Batches of :func:`eval_batch_size` for evaluation; with several ranks each evaluates its own part
    (every sample once)."""
    size = eval_batch_size(backends.get_backend(device).kind)
    if comm is None:
        return DataLoader(dataset, size, device=device)
    return DataLoader(dataset, size, device=device, sampler=DistributedSampler(dataset, shuffle=False, pad=False))


def _machine() -> dict:
    try:
        from xpgrad.bench.timing import machine
        return machine()
    except Exception:  # noqa: BLE001  (informational only)
        return {}


if __name__ == "__main__":
    from xpgrad.cli import run
    sys.exit(run(main, None, "xpgrad train"))
