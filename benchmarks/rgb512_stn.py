"""A spatial transformer for 512x512 RGB images, written as a PyTorch program for minstn.

The kind of module the NIPS'15 reading note behind this project describes: a localisation
network of four strided convolutions (3x3, stride 2, padding 1: 512 -> 32 pixels), each
followed by BatchNorm and ReLU, two 1x1 convolutions down to a single 32x32 map, then
Linear(32*32, 128) -> ReLU -> Linear(128, 6) started at the identity transform; the
sampler resamples the whole image through theta (eq. 1 and 3 of Jaderberg et al. 2015).
It stresses strided convolutions and batch normalisation on large images rather than the
paper's small digits.

Plain PyTorch; minstn runs it with only the imports changed
(``minstn.interop.load_module("benchmarks/rgb512_stn.py")``). ``benchmarks/pytorch_style.py``
times one training step of both, ``tests/test_pytorch_style.py`` compares them step by step.
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

SIZE = 512
# theta just off the identity, to compare engines: at the identity every sampling point lies
# on a pixel centre, where the bilinear kernel has a kink, and float32 rounding picks its side
NEAR_IDENTITY = [1.01, 0.003, 0.002, -0.004, 0.99, 0.001]


def conv_bn_relu(c_in, c_out):
    """Halve the resolution: a 3x3 convolution with stride 2, batch norm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class LargeImageTransformer(nn.Module):
    def __init__(self, widths=(16, 32, 48, 64)):
        super().__init__()
        channels = (3,) + tuple(widths)
        self.features = nn.Sequential(*[conv_bn_relu(a, b) for a, b in zip(channels, channels[1:])])
        self.squeeze = nn.Sequential(                   # 1x1 convolutions: 64 maps -> 1 map of 32x32
            nn.Conv2d(widths[-1], 8, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(8, 1, kernel_size=1),
        )
        side = SIZE // 2 ** len(widths)
        self.regressor = nn.Sequential(nn.Linear(side * side, 128), nn.ReLU(inplace=True), nn.Linear(128, 6))
        with torch.no_grad():                           # start at the identity transform
            self.regressor[2].weight.fill_(0)
            self.regressor[2].bias.copy_(torch.tensor([1.0, 0, 0, 0, 1, 0]))

    def forward(self, x):
        maps = self.squeeze(self.features(x))           # (N, 1, 32, 32)
        theta = self.regressor(maps.flatten(1)).view(-1, 2, 3)
        grid = F.affine_grid(theta, x.size(), align_corners=False)
        return F.grid_sample(x, grid, align_corners=False)


def make_optimizer(model, lr=0.05):
    return optim.SGD(model.parameters(), lr=lr, momentum=0.9)


def training_step(model, optimizer, images, targets):
    """Forward, a mean-squared error against the target images, backward, update."""
    optimizer.zero_grad()
    loss = F.mse_loss(model(images), targets)
    loss.backward()
    optimizer.step()
    return loss.item()


def example_images(n, seed=0):
    """``n`` smooth RGB images (sums of sinusoids), float32 (n, 3, 512, 512) NumPy arrays."""
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    waves = rng.uniform(0.5, 3.0, (n, 3, 3))
    return np.stack([[0.5 + 0.4 * np.sin(2 * np.pi * (f * u + g * v) + p) for f, g, p in w]
                     for w in waves]).astype(np.float32)
