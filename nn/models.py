"""The classic convolutional networks (LeNet-5 to ResNet-18) and small MNIST models, built only from nn layers.

Every constructor takes ``in_channels`` and ``num_classes``. ``alexnet``, ``vgg11`` and ``resnet18`` use
torchvision's module names and layouts (``features.N``, ``avgpool``, ``classifier.N``; ``conv1``, ``bn1``,
``layer1.0.conv1``, ``layer2.0.downsample.0``, ``fc``), so with ImageNet settings (3x224x224, 1000 classes)
they have exactly torchvision's parameters and a torchvision ``state_dict`` loads by name
(``nn.convert.torch_to_npz`` converts a ``.pth`` file). GoogLeNet is a simplified one (no batch norm, no
auxiliary classifiers), not torchvision's.
Expected inputs: LeNet-5 1x28x28; AlexNet, VGG, NiN 224x224; GoogLeNet 96x96 (or 224x224);
ResNet-18 any size >= 32 (28x28 works too). The ``textbook_*`` models are small MNIST
recipes (MLP 784-128-10, CNN conv32-pool-conv64-pool-128-10, 2-layer tanh RNN over 28 rows).
"""
from __future__ import annotations

from .conv import AdaptiveAvgPool2d, AvgPool2d, Conv2d, MaxPool2d
from .layers import BatchNorm2d, Dropout, Linear, ReLU, Sigmoid
from .module import Flatten, Module, Sequential
from .rnn import GRU, LSTM, RNN

__all__ = ["lenet5", "alexnet", "vgg", "vgg11", "vgg_block", "nin", "googlenet", "resnet18", "textbook_mlp",
           "textbook_cnn", "textbook_rnn", "AlexNet", "VGG", "ResNet", "RecurrentClassifier", "VGG_CONFIGS",
           "Inception", "Residual"]


def lenet5(in_channels: int = 1, num_classes: int = 10, activation: str = "sigmoid") -> Sequential:
    """LeNet-5 (padding 2 on the first convolution so 28x28 inputs work): 61,706 parameters for MNIST."""
    act = {"sigmoid": Sigmoid, "relu": ReLU}[activation]
    return Sequential(
        Conv2d(in_channels, 6, 5, padding=2), act(), AvgPool2d(2, 2),
        Conv2d(6, 16, 5), act(), AvgPool2d(2, 2), Flatten(),
        Linear(16 * 5 * 5, 120), act(), Linear(120, 84), act(), Linear(84, num_classes))


class AlexNet(Module):
    """AlexNet with torchvision's names: ``features.N`` (5 convolutions), ``avgpool`` (adaptive 6x6),
    ``classifier.N`` (3 dense layers), so a torchvision ``state_dict`` loads by name."""

    def __init__(self, in_channels: int = 3, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        self.features = Sequential(
            Conv2d(in_channels, 64, 11, stride=4, padding=2), ReLU(), MaxPool2d(3, 2),
            Conv2d(64, 192, 5, padding=2), ReLU(), MaxPool2d(3, 2),
            Conv2d(192, 384, 3, padding=1), ReLU(),
            Conv2d(384, 256, 3, padding=1), ReLU(),
            Conv2d(256, 256, 3, padding=1), ReLU(), MaxPool2d(3, 2))
        self.avgpool = AdaptiveAvgPool2d((6, 6))
        self.classifier = Sequential(
            Dropout(dropout), Linear(256 * 6 * 6, 4096), ReLU(),
            Dropout(dropout), Linear(4096, 4096), ReLU(),
            Linear(4096, num_classes))

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(x.reshape(x.shape[0], -1))


def alexnet(in_channels: int = 3, num_classes: int = 1000, dropout: float = 0.5) -> AlexNet:
    """AlexNet (torchvision's layout and names)."""
    return AlexNet(in_channels, num_classes, dropout)


VGG_CONFIGS = {"vgg11": ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))}


def _vgg_layers(num_convs: int, in_channels: int, out_channels: int) -> list:
    layers = []
    for _ in range(num_convs):
        layers += [Conv2d(in_channels, out_channels, 3, padding=1), ReLU()]
        in_channels = out_channels
    return layers + [MaxPool2d(2, 2)]


def vgg_block(num_convs: int, in_channels: int, out_channels: int) -> Sequential:
    """``num_convs`` 3x3 convolutions (padding 1) with ReLU, then 2x2 max pooling."""
    return Sequential(*_vgg_layers(num_convs, in_channels, out_channels))


class VGG(Module):
    """VGG with torchvision's names: the blocks' layers in one ``features`` sequence, ``avgpool`` (adaptive
    7x7) and ``classifier.N``; ``conv_arch`` is a sequence of (number of convolutions, channels) blocks."""

    def __init__(self, conv_arch=VGG_CONFIGS["vgg11"], in_channels: int = 3, num_classes: int = 1000,
                 dropout: float = 0.5, hidden: int = 4096):
        super().__init__()
        layers = []
        for num_convs, out_channels in conv_arch:
            layers += _vgg_layers(num_convs, in_channels, out_channels)
            in_channels = out_channels
        self.features = Sequential(*layers)
        self.avgpool = AdaptiveAvgPool2d((7, 7))
        self.classifier = Sequential(
            Linear(in_channels * 7 * 7, hidden), ReLU(), Dropout(dropout),
            Linear(hidden, hidden), ReLU(), Dropout(dropout),
            Linear(hidden, num_classes))

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(x.reshape(x.shape[0], -1))


def vgg(conv_arch=VGG_CONFIGS["vgg11"], in_channels: int = 3, num_classes: int = 1000, dropout: float = 0.5,
        hidden: int = 4096) -> VGG:
    """VGG from blocks (torchvision's layout and names)."""
    return VGG(conv_arch, in_channels, num_classes, dropout, hidden)


def vgg11(in_channels: int = 3, num_classes: int = 1000, width_divisor: int = 1) -> VGG:
    """VGG-11 (configuration A); ``width_divisor`` shrinks every layer's width, so it trains on a CPU."""
    arch = tuple((n, c // width_divisor) for n, c in VGG_CONFIGS["vgg11"])
    return VGG(arch, in_channels, num_classes, hidden=4096 // width_divisor)


def nin_block(in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int) -> Sequential:
    """A convolution followed by two 1x1 convolutions (per-pixel dense layers), each with ReLU."""
    return Sequential(
        Conv2d(in_channels, out_channels, kernel_size, stride, padding), ReLU(),
        Conv2d(out_channels, out_channels, 1), ReLU(),
        Conv2d(out_channels, out_channels, 1), ReLU())


def nin(in_channels: int = 1, num_classes: int = 10, dropout: float = 0.5) -> Sequential:
    """Network in Network: NiN blocks and global average pooling, no fully connected layer."""
    return Sequential(
        nin_block(in_channels, 96, 11, 4, 0), MaxPool2d(3, 2),
        nin_block(96, 256, 5, 1, 2), MaxPool2d(3, 2),
        nin_block(256, 384, 3, 1, 1), MaxPool2d(3, 2), Dropout(dropout),
        nin_block(384, num_classes, 3, 1, 1),
        AdaptiveAvgPool2d(1), Flatten())


class Inception(Module):
    """Four parallel paths joined on channels: 1x1; 1x1→3x3; 1x1→5x5; 3x3 max-pool→1x1."""

    def __init__(self, in_channels: int, c1: int, c2: tuple, c3: tuple, c4: int):
        super().__init__()
        self.p1 = Sequential(Conv2d(in_channels, c1, 1), ReLU())
        self.p2 = Sequential(Conv2d(in_channels, c2[0], 1), ReLU(), Conv2d(c2[0], c2[1], 3, padding=1), ReLU())
        self.p3 = Sequential(Conv2d(in_channels, c3[0], 1), ReLU(), Conv2d(c3[0], c3[1], 5, padding=2), ReLU())
        self.p4 = Sequential(MaxPool2d(3, stride=1, padding=1), Conv2d(in_channels, c4, 1), ReLU())
        self.out_channels = c1 + c2[1] + c3[1] + c4

    def forward(self, x):
        from autograd import cat
        return cat([self.p1(x), self.p2(x), self.p3(x), self.p4(x)], dim=1)


def googlenet(in_channels: int = 1, num_classes: int = 10) -> Sequential:
    """GoogLeNet: a stem, nine Inception blocks in three stages, global average pooling."""
    b1 = Sequential(Conv2d(in_channels, 64, 7, stride=2, padding=3), ReLU(), MaxPool2d(3, 2, 1))
    b2 = Sequential(Conv2d(64, 64, 1), ReLU(), Conv2d(64, 192, 3, padding=1), ReLU(), MaxPool2d(3, 2, 1))
    b3 = Sequential(Inception(192, 64, (96, 128), (16, 32), 32), Inception(256, 128, (128, 192), (32, 96), 64),
                    MaxPool2d(3, 2, 1))
    b4 = Sequential(Inception(480, 192, (96, 208), (16, 48), 64), Inception(512, 160, (112, 224), (24, 64), 64),
                    Inception(512, 128, (128, 256), (24, 64), 64), Inception(512, 112, (144, 288), (32, 64), 64),
                    Inception(528, 256, (160, 320), (32, 128), 128), MaxPool2d(3, 2, 1))
    b5 = Sequential(Inception(832, 256, (160, 320), (32, 128), 128), Inception(832, 384, (192, 384), (48, 128), 128),
                    AdaptiveAvgPool2d(1), Flatten())
    return Sequential(b1, b2, b3, b4, b5, Linear(1024, num_classes))


class Residual(Module):
    """Two 3x3 convolutions with batch norm, added to the input (through a 1x1 projection when shapes change)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = BatchNorm2d(out_channels)
        self.conv2 = Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = BatchNorm2d(out_channels)
        self.relu = ReLU()
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = Sequential(Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                         BatchNorm2d(out_channels))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        skip = x if self.downsample is None else self.downsample(x)
        return self.relu(y + skip)


class ResNet(Module):
    """ResNet with torchvision's names: ``conv1``, ``bn1``, ``layer1`` … ``layer4`` (each a sequence of
    :class:`Residual` blocks with ``conv1``/``bn1``/``conv2``/``bn2``/``downsample``), ``avgpool``, ``fc``."""

    def __init__(self, blocks=(2, 2, 2, 2), in_channels: int = 3, num_classes: int = 1000):
        super().__init__()
        self.conv1 = Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = BatchNorm2d(64)
        self.relu = ReLU()
        self.maxpool = MaxPool2d(3, 2, 1)
        channels = 64
        for i, (n, out) in enumerate(zip(blocks, (64, 128, 256, 512))):
            stage = [Residual(channels, out, 1 if i == 0 else 2)] + [Residual(out, out) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", Sequential(*stage))
            channels = out
        self.avgpool = AdaptiveAvgPool2d(1)
        self.fc = Linear(512, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.avgpool(x)
        return self.fc(x.reshape(x.shape[0], -1))


def resnet18(in_channels: int = 3, num_classes: int = 1000) -> ResNet:
    """ResNet-18 (torchvision's layout and names): stem, four stages of two residual blocks, pooling, dense."""
    return ResNet((2, 2, 2, 2), in_channels, num_classes)


def textbook_mlp(in_features: int = 784, hidden: int = 128, num_classes: int = 10) -> Sequential:
    """The MNIST MLP: 784-128-10 with ReLU (flatten the images first)."""
    return Sequential(Flatten(), Linear(in_features, hidden), ReLU(), Linear(hidden, num_classes))


def textbook_cnn(in_channels: int = 1, num_classes: int = 10) -> Sequential:
    """The MNIST CNN: conv 32 and 64 channels 3x3 padding 1, 2x2 max pooling, 3136-128-10."""
    return Sequential(
        Conv2d(in_channels, 32, 3, padding=1), ReLU(), MaxPool2d(2),
        Conv2d(32, 64, 3, padding=1), ReLU(), MaxPool2d(2), Flatten(),
        Linear(64 * 7 * 7, 128), ReLU(), Linear(128, num_classes))


class RecurrentClassifier(Module):
    """A recurrent network over the rows of an image (batch, 28 steps, 28 features); the last step is classified."""

    def __init__(self, kind: str = "rnn", input_size: int = 28, hidden_size: int = 128, num_layers: int = 2,
                 num_classes: int = 10):
        super().__init__()
        cls = {"rnn": RNN, "lstm": LSTM, "gru": GRU}[kind]
        self.rnn = cls(input_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.fc = Linear(hidden_size, num_classes)

    def forward(self, x):
        if x.ndim == 4:           # (N, 1, 28, 28) images: rows are time steps
            x = x.reshape(x.shape[0], x.shape[2], x.shape[3])
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])


def textbook_rnn(kind: str = "rnn", num_classes: int = 10) -> RecurrentClassifier:
    """The MNIST RNN: 2 layers, tanh, hidden 128, the 28 rows of an image as time steps."""
    return RecurrentClassifier(kind, 28, 128, 2, num_classes)
