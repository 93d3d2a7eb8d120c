"""Data loading: datasets, mini-batch loaders, splits, transforms, and MNIST / Fashion-MNIST readers.

PyTorch's names: ``nn.data`` stands for ``torch.utils.data``, ``nn.data.datasets`` and ``nn.data.transforms``
for ``torchvision.datasets`` and ``torchvision.transforms``. Batches are Tensors. Host-side code (NumPy is
allowed here, and only here within ``nn``)::

    from nn.data import DataLoader, TensorDataset, random_split, k_fold, datasets, transforms
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train = datasets.MNIST("./data", train=True, transform=tf, download=True)
    train, val = random_split(train, [0.9, 0.1], seed=0)
    for x, y in DataLoader(train, batch_size=64, shuffle=True, seed=0):
        ...   # x: float32 Tensor (64, 1, 28, 28), y: int64 Tensor (64,)
"""
from . import datasets, idx, transforms  # noqa: F401
from .dataset import Dataset, Subset, TensorDataset, as_generator, k_fold, random_split
from .datasets import DatasetNotFoundError, ImageDataset, fashion_mnist, mnist
from .idx import IDXFormatError, read_idx, write_idx
from .loader import DataLoader, default_collate, to_device
from .sampler import DistributedSampler

__all__ = ["Dataset", "TensorDataset", "DistributedSampler", "Subset", "DataLoader", "random_split", "k_fold", "default_collate",
           "to_device", "as_generator", "ImageDataset", "mnist", "fashion_mnist", "DatasetNotFoundError",
           "IDXFormatError", "read_idx", "write_idx", "datasets", "transforms", "idx"]
