#!/usr/bin/python3
"""Checkpoints in the layouts people publish them, written to tests/fixtures/published/ for
tests/nn-published-checkpoint.test.ts (readPublishedCheckpoint / loadPublished in nn/io/published.ts).

Run with Debian's interpreter (the python3 on PATH has no torch):
    /usr/bin/python3 scripts/make-published-checkpoint-fixture.py

One tiny CIFAR ResNet-8 (3 stages of one BasicBlock at 4, 8 and 16 channels, 1x1 conv + BN shortcuts where the
shape changes, named `shortcut` as in akamaster/pytorch_resnet_cifar10's option B, classifier `linear`; 5,214
parameters) with seeded random weights and random BN statistics, saved four ways:
- akamaster-zip.th: torch.save({'best_prec1': 91.2, 'state_dict': ...}) of an nn.DataParallel model (every key
  starts with 'module.'), BN without num_batches_tracked (as PyTorch < 0.4.1 saved it), zip format;
- akamaster-legacy.th: the same object in the legacy (non-zip) format (_use_new_zipfile_serialization=False);
- model-wrapper.pth: {'epoch': 30, 'arch': 'resnet8', 'model': <state_dict in torchvision / ptslab names:
  layerN.0.downsample.0/.1 and fc, num_batches_tracked = 30>};
- net-wrapper.pth: {'net': {'state_dict': <DataParallel state_dict, akamaster names, no num_batches_tracked>},
  'acc': tensor(0.875), 'epoch': 7}: two wrappers deep, with a tensor and an int beside them.
expected.json holds, per key (akamaster names), the shape, the sum and the first four values, and the eval-mode
logits of the model for the input x[i] = ((i % 17) - 8) / 8 of shape [2, 3, 8, 8] (exact in float32).

Reproducible: every random draw is seeded. The zip files are byte-identical on every run; the legacy file's storage
keys are memory addresses, so its bytes change (not its content). Total size is about 150 KB.
"""

import json
import os
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'fixtures', 'published')


class Block(nn.Module):
    def __init__(self, inp, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or inp != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(inp, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet8(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.layer1 = nn.Sequential(Block(4, 4, 1))
        self.layer2 = nn.Sequential(Block(4, 8, 2))
        self.layer3 = nn.Sequential(Block(8, 16, 2))
        self.linear = nn.Linear(16, 10)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.avg_pool2d(out, out.size()[3]).view(out.size(0), -1)
        return self.linear(out)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(20240522)
    model = ResNet8()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
    model.eval()
    x = ((torch.arange(2 * 3 * 8 * 8) % 17 - 8).float() / 8).reshape(2, 3, 8, 8)
    with torch.no_grad():
        logits = model(x)

    # nn.DataParallel on a CPU-only host keeps the module and prefixes every key with 'module.'.
    old = OrderedDict((k, v) for k, v in nn.DataParallel(model).state_dict().items() if not k.endswith('num_batches_tracked'))
    assert all(k.startswith('module.') for k in old)
    akamaster = {'best_prec1': 91.2, 'state_dict': old}
    torch.save(akamaster, os.path.join(OUT, 'akamaster-zip.th'))
    torch.save(akamaster, os.path.join(OUT, 'akamaster-legacy.th'), _use_new_zipfile_serialization=False)

    def torchvision_name(k):
        k = k.replace('.shortcut.', '.downsample.')
        return 'fc.' + k[len('linear.'):] if k.startswith('linear.') else k

    tv = OrderedDict()
    for k, v in model.state_dict().items():
        tv[torchvision_name(k)] = torch.tensor(30, dtype=torch.long) if k.endswith('num_batches_tracked') else v
    torch.save({'epoch': 30, 'arch': 'resnet8', 'model': tv}, os.path.join(OUT, 'model-wrapper.pth'))
    torch.save({'net': {'state_dict': old}, 'acc': torch.tensor(0.875), 'epoch': 7}, os.path.join(OUT, 'net-wrapper.pth'))

    expected = {
        'input': 'x[i] = ((i % 17) - 8) / 8, shape [2, 3, 8, 8]',
        'logits': logits.flatten().tolist(),
        'tensors': {
            k: {'shape': list(v.shape), 'sum': float(v.double().sum()), 'first': v.flatten()[:4].double().tolist()}
            for k, v in model.state_dict().items() if not k.endswith('num_batches_tracked')
        },
    }
    with open(os.path.join(OUT, 'expected.json'), 'w') as f:
        json.dump(expected, f, indent=1)
        f.write('\n')
    for name in sorted(os.listdir(OUT)):
        print(f'{name}: {os.path.getsize(os.path.join(OUT, name))} bytes')


if __name__ == '__main__':
    main()
