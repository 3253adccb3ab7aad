"""PyTorch's side of ptslab's option-B CIFAR ResNets, with ptslab's state_dict keys (conv1, bn1, layerN.M.conv1/bn1/
conv2/bn2, layerN.M.downsample.0/.1, fc): the oracle that tests load ptslab's checkpoints into. Imported by the test
scripts (tests add this folder to sys.path) and by bench_torch.py (whose ResNet-18 uses the same BasicBlock)."""

import torch
import torch.nn as nn


class BasicBlock(nn.Module):
    def __init__(self, inp, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inp != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inp, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


def stage(inp, planes, n, stride):
    return nn.Sequential(BasicBlock(inp, planes, stride), *[BasicBlock(planes, planes, 1) for _ in range(n - 1)])


class CifarResNet(nn.Module):
    def __init__(self, depth, classes=10, in_channels=3):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.layer1 = stage(16, 16, n, 1)
        self.layer2 = stage(16, 32, n, 2)
        self.layer3 = stage(32, 64, n, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.avgpool(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(x, 1))
