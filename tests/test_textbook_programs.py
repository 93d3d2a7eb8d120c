"""The three PyTorch MNIST programs of the textbook notes (../shared/seeds/002_*.txt, MLP, CNN and RNN), typed from
the notes with only their imports changed, run end to end on a small stand-in MNIST written as IDX files.

The notes' lines are cut at the page edge in places; the completions are the obvious ones (the rest of a
keyword argument list, ``Normalize((0.5,), (0.5,))`` after ``ToTensor()``, ``batch_first=True`` for the RNN that
reads ``out[:, -1, :]``) and are marked ``# completed``. The stand-in images carry their class as a bright
row band, so each program must also learn: test accuracy well above chance.
"""
from __future__ import annotations

import contextlib
import io
import re

import numpy as np
import pytest

from nn.data.idx import write_idx

IMPORTS_MLP = """
import autograd as torch
import nn
import nn.optim as optim
import nn.data.transforms as transforms
import nn.data as torchvision
from nn.data import DataLoader
"""

MLP = """
# 定义应用于数据的转换
transform = transforms.Compose([transforms.ToTensor()])

# 加载 MNIST 数据集
trainset = torchvision.datasets.MNIST(root='./data', train=True,
                                      download=True, transform=transform)  # completed
testset = torchvision.datasets.MNIST(root='./data', train=False,
                                     download=True, transform=transform)  # completed

# 设置超参数
batch_size = 64
input_size = 28 * 28
hidden_size = 128
output_size = 10
learning_rate = 0.001
num_epochs = 10

# 创建数据加载器
trainloader = DataLoader(trainset, batch_size=batch_size, shuffle=True)  # completed
testloader = DataLoader(testset, batch_size=batch_size, shuffle=False)  # completed

# 定义 MLP 模型
class MLP(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super(MLP, self).__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        x = x.view(x.size(0), -1)
        x = self.fc1(x)
        x = self.relu(x)
        x = self.fc2(x)
        return x

# 初始化模型
model = MLP(input_size, hidden_size, output_size)

# 定义损失函数和优化器
criterion = nn.CrossEntropyLoss()
optimizer = optim.Adam(model.parameters(), lr=learning_rate)

# 训练循环
for epoch in range(num_epochs):
    running_loss = 0.0
    for i, data in enumerate(trainloader):
        inputs, labels = data

        optimizer.zero_grad()

        outputs = model(inputs)
        loss = criterion(outputs, labels)

        loss.backward()
        optimizer.step()

        running_loss += loss.item()

    print(f'Epoch [{epoch+1}/{num_epochs}], Loss: {running_loss}')  # completed

# 测试
correct = 0
total = 0
with torch.no_grad():
    for data in testloader:
        images, labels = data
        outputs = model(images)
        _, predicted = torch.max(outputs.data, 1)
        total += labels.size(0)
        correct += (predicted == labels).sum().item()

print(f'Accuracy on the test set: {(100 * correct / total):.2f}%')  # completed
"""

IMPORTS_CNN = """
import autograd as torch
import nn
import nn.optim as optim
import nn.data.transforms as transforms
from nn.data import DataLoader
from nn.data.datasets import MNIST
"""

CNN = """
# Define the transformation to apply to the data
transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])  # completed

# Load the MNIST dataset
trainset = MNIST(root='./data', train=True, download=True, transform=transform)  # completed
testset = MNIST(root='./data', train=False, download=True, transform=transform)  # completed

# Set hyperparameters
batch_size = 64
learning_rate = 0.001
num_epochs = 10

# Create data loaders
trainloader = DataLoader(trainset, batch_size=batch_size, shuffle=True)  # completed
testloader = DataLoader(testset, batch_size=batch_size, shuffle=False)  # completed

# Define the CNN model
class CNN(nn.Module):
    def __init__(self):
        super(CNN, self).__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=3, stride=1, padding=1)  # completed
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, stride=1, padding=1)  # completed
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = self.relu(x)
        x = self.maxpool(x)
        x = self.conv2(x)
        x = self.relu(x)
        x = self.maxpool(x)
        x = x.view(x.size(0), -1)
        x = self.fc1(x)
        x = self.relu(x)
        x = self.fc2(x)
        return x

# Initialize the model
model = CNN()

# Define loss function and optimizer
criterion = nn.CrossEntropyLoss()
optimizer = optim.Adam(model.parameters(), lr=learning_rate)

# Training loop
for epoch in range(num_epochs):
    running_loss = 0.0
    for i, data in enumerate(trainloader):
        inputs, labels = data

        optimizer.zero_grad()

        outputs = model(inputs)
        loss = criterion(outputs, labels)

        loss.backward()
        optimizer.step()

        running_loss += loss.item()

    print(f'Epoch [{epoch+1}/{num_epochs}], Loss: {running_loss}')

# Testing
correct = 0
total = 0
with torch.no_grad():
    for data in testloader:
        images, labels = data
        outputs = model(images)
        _, predicted = torch.max(outputs.data, 1)
        total += labels.size(0)
        correct += (predicted == labels).sum().item()

print(f'Accuracy on the test set: {(100 * correct / total):.2f}%')
"""

IMPORTS_RNN = """
import autograd as torch
import nn
import nn.optim as optim
from nn.data import DataLoader
from nn.data.datasets import MNIST
import nn.data.transforms as transforms
"""

RNN = """
# Set hyperparameters
batch_size = 64
input_size = 28 # MNIST images are 28x28 pixels
hidden_size = 128
num_layers = 2
num_classes = 10
num_epochs = 10
learning_rate = 0.001

# Load the MNIST dataset
transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])  # completed
trainset = MNIST(root='./data', train=True, download=True, transform=transform)  # completed
testset = MNIST(root='./data', train=False, download=True, transform=transform)  # completed

# Create data loaders
trainloader = DataLoader(trainset, batch_size=batch_size, shuffle=True)  # completed
testloader = DataLoader(testset, batch_size=batch_size, shuffle=False)  # completed

# Define the RNN model
class RNN(nn.Module):
    def __init__(self, input_size, hidden_size, num_layers, num_classes):  # completed
        super(RNN, self).__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.rnn = nn.RNN(input_size, hidden_size, num_layers, batch_first=True)  # completed
        self.fc = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        h0 = torch.zeros(self.num_layers, x.size(0), self.hidden_size)  # completed
        out, _ = self.rnn(x, h0)
        out = self.fc(out[:, -1, :])
        return out

# Initialize the model
model = RNN(input_size, hidden_size, num_layers, num_classes)

# Define loss function and optimizer
criterion = nn.CrossEntropyLoss()
optimizer = optim.Adam(model.parameters(), lr=learning_rate)

# Training loop
total_step = len(trainloader)
for epoch in range(num_epochs):
    for i, (images, labels) in enumerate(trainloader):
        images = images.reshape(-1, input_size, input_size)

        # Forward pass
        outputs = model(images)
        loss = criterion(outputs, labels)

        # Backward and optimize
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

        if (i + 1) % 100 == 0:
            print(f'Epoch [{epoch+1}/{num_epochs}], Step [{i+1}/{total_step}], Loss: {loss.item():.4f}')  # completed

# Testing
model.eval()

with torch.no_grad():
    correct = 0
    total = 0
    for images, labels in testloader:
        images = images.reshape(-1, input_size, input_size)
        outputs = model(images)
        _, predicted = torch.max(outputs.data, 1)
        total += labels.size(0)
        correct += (predicted == labels).sum().item()

print(f'Test Accuracy: {100 * correct / total:.2f}%')
"""

PROGRAMS = {"mlp": (IMPORTS_MLP, MLP, 80.0), "cnn": (IMPORTS_CNN, CNN, 80.0), "rnn": (IMPORTS_RNN, RNN, 50.0)}


def _stand_in(n: int, seed: int):
    """Images of class k: a bright band on rows 2k+4 .. 2k+6 over noise, so the class can be learnt."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(labels):
        images[i, 2 * k + 4:2 * k + 7, 3:25] = 230
    return images, labels


@pytest.fixture
def mnist_dir(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    for prefix, n, seed in (("train", 320, 0), ("t10k", 128, 1)):
        images, labels = _stand_in(n, seed)
        write_idx(data / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(data / f"{prefix}-labels-idx1-ubyte.gz", labels)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XPGRAD_DATA", str(tmp_path / "nowhere"))
    return data


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_the_notes_program_runs_with_only_its_imports_changed(name, mnist_dir):
    imports, body, floor = PROGRAMS[name]
    import autograd as ag
    ag.manual_seed(0)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(imports + body, f"<notes: {name}>", "exec"), {"__name__": f"notes_{name}"})
    text = out.getvalue()
    accuracy = float(re.findall(r"ccuracy[^:]*: ([0-9.]+)%", text)[-1])
    assert accuracy >= floor, f"{name}: accuracy {accuracy}% on a learnable stand-in set\n{text}"
    if name != "rnn":
        losses = [float(v) for v in re.findall(r"Loss: ([0-9.e+-]+)", text)]
        assert len(losses) == 10 and losses[-1] < losses[0], text
