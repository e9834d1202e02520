"""A tiny Inception-style CNN (random weights, 32x32 inputs): the benchmark's stand-in for torchvision's CNNs
(``--quick``, or without torchvision) and the tests' CNN (``tests/aten_models`` takes it from here).

Why in the package: ``runtime.aten.bench_models`` took it from ``tests/aten_models.py`` by putting the checkout's
``tests/`` on ``sys.path``, so from a ``pip install .`` (which ships no ``tests/``) ``runtime.aten.bench --quick``
ended in ``ModuleNotFoundError: No module named 'aten_models'``. Imports torch: import it only where torch is.
"""

from __future__ import annotations

import torch
from torch import nn


class InceptionBlock(nn.Module):
    """Four parallel branches (1x1; 1x1 -> 3x3; 1x1 -> 5x5; pool -> 1x1) concatenated."""

    def __init__(self, cin: int, c: int):
        super().__init__()
        def conv(i, o, k):
            return nn.Sequential(nn.Conv2d(i, o, k, padding=k // 2, bias=False), nn.BatchNorm2d(o),
                                 nn.ReLU(inplace=True))
        self.b1 = conv(cin, c, 1)
        self.b2 = nn.Sequential(conv(cin, c, 1), conv(c, c, 3))
        self.b3 = nn.Sequential(conv(cin, c // 2, 1), conv(c // 2, c, 5))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), conv(cin, c, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(inplace=True))
        self.a = InceptionBlock(16, 8)
        self.pool = nn.MaxPool2d(2)
        self.b = InceptionBlock(32, 8)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.b(self.pool(self.a(self.stem(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
