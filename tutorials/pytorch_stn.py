"""A spatial transformer network written as a PyTorch program, for step 11 of the course.

It is plain PyTorch: the imports below are torch's. minstn runs this same file with only
those lines changed (``minstn.interop.load_module("tutorials/pytorch_stn.py")`` rewrites
them, ``import torch`` -> ``import minstn as torch`` and so on); tutorial 11 runs it both
ways on distorted digits and measures how far apart the two runs end up.

The network: a localisation net looks at the whole 42x42 canvas of an RTS digit (rotated,
scaled, placed anywhere) and regresses the 6 numbers of an affine transform, started at
the identity; the sampler reads a 28x28 view of the canvas through that transform (eq. 1
and 3 of Jaderberg et al. 2015), and a small CNN classifies the view.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.utils.data import DataLoader, TensorDataset

VIEW = 28  # side of the transformer's output


class STNet(nn.Module):
    def __init__(self):
        super().__init__()
        # Localisation net: the canvas at half resolution, two conv layers.
        self.localization = nn.Sequential(
            nn.MaxPool2d(2),                      # 42 -> 21
            nn.Conv2d(1, 8, kernel_size=5),       # 21 -> 17
            nn.MaxPool2d(2, stride=2),            # 17 -> 8
            nn.ReLU(True),
            nn.Conv2d(8, 10, kernel_size=3),      # 8 -> 6
            nn.MaxPool2d(2, stride=2),            # 6 -> 3
            nn.ReLU(True),
        )
        self.fc_loc = nn.Sequential(nn.Linear(10 * 3 * 3, 32), nn.ReLU(True), nn.Linear(32, 3 * 2))
        # Start at the identity transform: zero weights, the identity as bias.
        self.fc_loc[2].weight.data.zero_()
        self.fc_loc[2].bias.data.copy_(torch.tensor([1, 0, 0, 0, 1, 0], dtype=torch.float))

        # Classifier of the 28x28 view.
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)   # 28 -> 28, pooled to 14
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)  # 14 -> 14, pooled to 7
        self.conv2_drop = nn.Dropout2d(0.2)
        self.fc1 = nn.Linear(32 * 7 * 7, 64)
        self.fc2 = nn.Linear(64, 10)

    def stn(self, x):
        xs = self.localization(x)
        xs = xs.view(-1, 10 * 3 * 3)
        theta = self.fc_loc(xs).view(-1, 2, 3)
        grid = F.affine_grid(theta, (x.size(0), x.size(1), VIEW, VIEW), align_corners=False)
        return F.grid_sample(x, grid, align_corners=False)

    def forward(self, x):
        x = self.stn(x)
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = x.view(-1, 32 * 7 * 7)
        x = F.relu(self.fc1(x))
        x = F.dropout(x, p=0.3, training=self.training)
        return F.log_softmax(self.fc2(x), dim=1)


def make_optimizer(model):
    return optim.Adam(model.parameters(), lr=2e-3)


def make_loader(images, labels, batch_size=64, shuffle=False):
    """Batches of (image, label) from NumPy arrays: float32 (N, 1, H, W) and int64 (N,)."""
    dataset = TensorDataset(torch.from_numpy(images), torch.from_numpy(labels))
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle)


def train_step(model, optimizer, data, target):
    optimizer.zero_grad()
    output = model(data)
    loss = F.nll_loss(output, target)
    loss.backward()
    optimizer.step()
    return loss.item()


def train(model, optimizer, loader):
    """One epoch; returns the mean training loss."""
    model.train()
    losses = [train_step(model, optimizer, data, target) for data, target in loader]
    return sum(losses) / len(losses)


def test(model, loader):
    """(mean loss, error rate) over the loader's dataset."""
    model.eval()
    test_loss, correct = 0.0, 0
    with torch.no_grad():
        for data, target in loader:
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction="sum").item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
    n = len(loader.dataset)
    return test_loss / n, 1 - correct / n


def transformed(model, images):
    """What the transformer makes of a batch of images (NumPy in, NumPy out)."""
    model.eval()
    with torch.no_grad():
        return model.stn(torch.from_numpy(images)).numpy()
