"""torchvision-compatible zoo: a state_dict of a PyTorch model with torchvision's names and layout loads by
name (directly, and through a converted .pth file) and gives the same outputs in eval mode.

torchvision itself cannot be installed beside the CPU torch wheel here, so the PyTorch twins are built with
torchvision's module names and layouts (the layouts are public: features/avgpool/classifier, conv1/bn1/
layer1.0.conv1/downsample.0/fc).
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest

import autograd as ag
import nn
from nn import models
from nn.convert import main as convert_main, torch_to_npz
from nn.serialization import CheckpointError

torch = pytest.importorskip("torch")
tnn = torch.nn


def torch_alexnet(num_classes=10):
    m = tnn.Module()
    m.features = tnn.Sequential(
        tnn.Conv2d(3, 64, 11, 4, 2), tnn.ReLU(), tnn.MaxPool2d(3, 2), tnn.Conv2d(64, 192, 5, padding=2), tnn.ReLU(),
        tnn.MaxPool2d(3, 2), tnn.Conv2d(192, 384, 3, padding=1), tnn.ReLU(), tnn.Conv2d(384, 256, 3, padding=1),
        tnn.ReLU(), tnn.Conv2d(256, 256, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(3, 2))
    m.avgpool = tnn.AdaptiveAvgPool2d((6, 6))
    m.classifier = tnn.Sequential(tnn.Dropout(), tnn.Linear(9216, 4096), tnn.ReLU(), tnn.Dropout(),
                                  tnn.Linear(4096, 4096), tnn.ReLU(), tnn.Linear(4096, num_classes))
    m.forward = lambda x: m.classifier(torch.flatten(m.avgpool(m.features(x)), 1))
    return m


def torch_vgg11(div=8, num_classes=10):
    layers, c = [], 3
    for n, out in ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512)):
        for _ in range(n):
            layers += [tnn.Conv2d(c, out // div, 3, padding=1), tnn.ReLU()]
            c = out // div
        layers.append(tnn.MaxPool2d(2, 2))
    m = tnn.Module()
    m.features = tnn.Sequential(*layers)
    m.avgpool = tnn.AdaptiveAvgPool2d((7, 7))
    h = 4096 // div
    m.classifier = tnn.Sequential(tnn.Linear(c * 49, h), tnn.ReLU(), tnn.Dropout(), tnn.Linear(h, h), tnn.ReLU(),
                                  tnn.Dropout(), tnn.Linear(h, num_classes))
    m.forward = lambda x: m.classifier(torch.flatten(m.avgpool(m.features(x)), 1))
    return m


class BasicBlock(tnn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(cout)
        self.relu = tnn.ReLU()
        self.conv2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = tnn.Sequential(tnn.Conv2d(cin, cout, 1, stride, bias=False), tnn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


class TorchResNet18(tnn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = tnn.BatchNorm2d(64)
        self.relu = tnn.ReLU()
        self.maxpool = tnn.MaxPool2d(3, 2, 1)
        c = 64
        for i, out in enumerate((64, 128, 256, 512)):
            setattr(self, f"layer{i + 1}", tnn.Sequential(BasicBlock(c, out, 1 if i == 0 else 2),
                                                          BasicBlock(out, out)))
            c = out
        self.avgpool = tnn.AdaptiveAvgPool2d(1)
        self.fc = tnn.Linear(512, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _randomise_bn(m):
    g = torch.Generator().manual_seed(1)
    for mod in m.modules():
        if isinstance(mod, tnn.BatchNorm2d):
            mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
            mod.weight.data.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
            mod.bias.data.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
            mod.num_batches_tracked.fill_(7)


CASES = {
    "resnet18": (lambda: TorchResNet18(), lambda: models.resnet18(3, 10), (2, 3, 64, 64)),
    "alexnet": (lambda: torch_alexnet(), lambda: models.alexnet(3, 10), (1, 3, 127, 127)),
    "vgg11": (lambda: torch_vgg11(), lambda: models.vgg11(3, 10, width_divisor=8), (2, 3, 32, 32)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_torch_state_dict_loads_by_name_and_matches(name, tmp_path):
    make_torch, make_ours, shape = CASES[name]
    torch.manual_seed(0)
    tm = make_torch()
    _randomise_bn(tm)
    tm.eval()
    ours = make_ours()
    theirs = {k: v.detach().numpy() for k, v in tm.state_dict().items()}
    assert list(ours.state_dict()) == list(theirs), "names and order follow torchvision"
    ours.load_state_dict(theirs)
    ours.eval()
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        want = tm(torch.from_numpy(x)).numpy()
    got = ours(ag.tensor(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)

    # the same weights through a .pth file and the converter
    torch.save(tm.state_dict(), tmp_path / "w.pth")
    shapes = torch_to_npz(str(tmp_path / "w.pth"), str(tmp_path / "w.npz"))
    assert shapes == {k: v.shape for k, v in theirs.items()}
    fresh = make_ours()
    fresh.load_state_dict(nn.load(str(tmp_path / "w.npz")))
    fresh.eval()
    np.testing.assert_allclose(fresh(ag.tensor(x)).numpy(), want, rtol=1e-4, atol=1e-4)


def test_converter_takes_wrapped_checkpoints_and_has_a_command_line(tmp_path, capsys):
    sd = {"fc.weight": torch.ones(2, 3), "fc.bias": torch.zeros(2)}
    torch.save({"epoch": 3, "state_dict": sd}, tmp_path / "ck.pth")
    assert convert_main([str(tmp_path / "ck.pth"), str(tmp_path / "ck.npz")]) == 0
    assert "2 tensors, 8 values" in capsys.readouterr().out
    np.testing.assert_array_equal(nn.load(str(tmp_path / "ck.npz"))["fc.weight"], np.ones((2, 3)))
    torch.save({"weights": sd}, tmp_path / "k.pth")
    assert set(torch_to_npz(str(tmp_path / "k.pth"), str(tmp_path / "k.npz"), key="weights")) == set(sd)


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.parametrize("payload,match", [
    (Evil(), "not a weights-only PyTorch file"),
    ({"a.weight": torch.ones(2), "note": "text"}, "entry 'note'"),
    ([torch.ones(2)], "holds a list, not a state_dict"),
])
def test_converter_refuses_what_is_not_a_weights_only_state_dict(tmp_path, payload, match):
    src, dst = tmp_path / "bad.pth", tmp_path / "bad.npz"
    if isinstance(payload, Evil):
        src.write_bytes(pickle.dumps(payload))
    else:
        torch.save(payload, src)
    with pytest.raises(CheckpointError, match=match):
        torch_to_npz(str(src), str(dst))
    assert not dst.exists()
    with pytest.raises(CheckpointError, match="has no entry 'nope'"):
        torch.save({"a": torch.ones(1)}, src)
        torch_to_npz(str(src), str(dst), key="nope")
