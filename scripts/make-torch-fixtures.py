#!/usr/bin/python3
"""Golden fixtures from PyTorch / torchvision for the nn/ tests, written to tests/fixtures/torch/.

Run with Debian's interpreter (the python3 on PATH has no torch):
    /usr/bin/python3 scripts/make-torch-fixtures.py
Reproducible: every random draw is seeded, so every file is rewritten identically, except tiny-legacy.pth and
malicious-eval-legacy.pth, whose legacy-format storage keys are memory addresses (same content, other bytes).

Why these fixtures (the size trade-off):
- Full-size torchvision weights are too big to commit (resnet18 is 45 MB in float32, 23 MB in float16), and CI has
  no torch to make them at test time. So the two full torchvision architectures the tests run (resnet18 and
  mobilenet_v2 at width 1.0) get *formula weights*: every parameter and BN statistic is a pure function of its
  state_dict key and element index (a 32-bit integer hash, `formula_value` below, mirrored bit for bit in
  tests/nn-fixtures.test.ts), rounded to float32. Only their inputs' formula and golden logits are committed
  (a few hundred bytes), yet the whole architecture, every key and every weight layout is checked against torchvision.
- The safetensors load path is checked with real torch-initialised weights and randomised BN statistics on models that
  are small in float32: the CIFAR resnet20 (272k parameters, 1.1 MB) and torchvision's mobilenet_v2 at width 0.25
  with 10 classes (251k parameters, 1 MB). Their logits are checked in eval mode, and resnet20 also in train mode
  (batch statistics) together with the updated running statistics.
- Key lists with shapes (and parameter counts) for resnet18/34/50, mobilenet_v2 at widths 1.0 and 0.5, resnet20 and
  resnet56 (no weights) pin the architectures.
- Tiny torch.save files exercise the .pth reader: a plain state_dict (with a transposed, a float16, a float64 and an
  int64 tensor), wrapped variants ({"state_dict": ...}, {"model": {"module.*": ...}}), the legacy non-zip format,
  and two malicious pickles (os.system, builtins.eval) that must be rejected.
- One tiny network trained three steps with SGD (momentum, nesterov, weight decay, two parameter groups), Adam and
  AdamW gives the weights PyTorch reaches, from the same initial weights, inputs and loss.
Total size is about 2.5 MB.

The safetensors files are written by `save_safetensors` here, which follows the reference writer's layout (u64
little-endian header length, JSON header with __metadata__ first, padded with spaces to a multiple of 8, raw
little-endian data); the safetensors package is not in Debian.
"""

import json
import os
import pickle
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torchvision
from torchvision.models.resnet import BasicBlock

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'fixtures', 'torch')


def save_safetensors(path, tensors, metadata=None):
    header = {}
    if metadata:
        header['__metadata__'] = metadata
    blobs, offset = [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        if t.dtype == torch.int64:
            dtype, arr = 'I64', t.numpy().astype('<i8')
        else:
            dtype, arr = 'F32', t.float().numpy().astype('<f4')
        b = arr.tobytes()
        header[name] = {'dtype': dtype, 'shape': list(t.shape), 'data_offsets': [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ---- formula weights: mirrored in tests/nn-fixtures.test.ts ----

from fixture_weights import fnv1a, formula_value, hash_uniform  # noqa: E402,F401  (shared with the other fixture scripts)


def set_formula_weights(model):
    sd = model.state_dict()
    for k, t in sd.items():
        if k.endswith('num_batches_tracked'):
            t.zero_()
        else:
            t.copy_(torch.from_numpy(formula_value(k, tuple(t.shape))))


# ---- models ----

class CifarResNet(nn.Module):
    """He et al.'s CIFAR ResNet with torchvision's BasicBlock and option-B (1x1 conv + BN) shortcuts."""

    def __init__(self, depth, num_classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.inplanes = 16
        self.layer1 = self._stage(16, n, 1)
        self.layer2 = self._stage(32, n, 2)
        self.layer3 = self._stage(64, n, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')

    def _stage(self, planes, n, stride):
        down = None
        if stride != 1 or self.inplanes != planes:
            down = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, down)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, n)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def randomise_bn_stats(model, gen):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=gen) * 0.1)
            m.num_batches_tracked.fill_(7)


def to_list(t):
    return [float(v) for v in t.detach().double().flatten()]


def keys_fixture():
    builders = {
        'resnet18': lambda: torchvision.models.resnet18(),
        'resnet34': lambda: torchvision.models.resnet34(),
        'resnet50': lambda: torchvision.models.resnet50(),
        'mobilenet_v2': lambda: torchvision.models.mobilenet_v2(),
        'mobilenet_v2_w0.5': lambda: torchvision.models.mobilenet_v2(width_mult=0.5),
        'resnet20': lambda: CifarResNet(20),
        'resnet56': lambda: CifarResNet(56),
    }
    out = {}
    for name, build in builders.items():
        m = build()
        out[name] = {
            'numParameters': sum(p.numel() for p in m.parameters()),
            'stateDict': [[k, list(v.shape)] for k, v in m.state_dict().items()],
        }
    with open(os.path.join(OUT, 'model-keys.json'), 'w') as f:
        json.dump(out, f, separators=(',', ':'))


@torch.no_grad()
def logits_fixtures():
    torch.manual_seed(1234)  # torch's own initialisation of the models below
    gen = torch.Generator().manual_seed(1234)
    summary = {}
    # Real torch weights through safetensors.
    for name, model, size in [
        ('resnet20', CifarResNet(20, 10), 32),
        ('mobilenet_v2_w0.25', torchvision.models.mobilenet_v2(num_classes=10, width_mult=0.25), 32),
    ]:
        randomise_bn_stats(model, gen)
        x = torch.randn(2, 3, size, size, generator=gen)
        model.eval()
        logits = model(x)
        entry = {'input': to_list(x), 'inputShape': list(x.shape), 'evalLogits': to_list(logits)}
        if name == 'resnet20':  # a forward hook's view of a block output, as reconstruction losses will use it
            seen = []
            handle = model.layer2[1].register_forward_hook(lambda mod, inp, out: seen.append(out.clone()))
            model(x)
            handle.remove()
            entry['layer2.1Output'] = {'shape': list(seen[0].shape), 'sum': float(seen[0].double().sum()), 'sumAbs': float(seen[0].double().abs().sum())}
        save_safetensors(os.path.join(OUT, f"{name.replace('_', '-')}.safetensors"), model.state_dict(), {'source': f'torch {torch.__version__}', 'model': name})
        if name == 'resnet20':
            model.train()
            entry['trainLogits'] = to_list(model(x))
            entry['bn1RunningMeanAfter'] = to_list(model.bn1.running_mean)
            entry['bn1RunningVarAfter'] = to_list(model.bn1.running_var)
        summary[name] = entry
    # Full torchvision architectures with formula weights.
    for name, model, size in [
        ('resnet18', torchvision.models.resnet18(), 64),
        ('mobilenet_v2', torchvision.models.mobilenet_v2(), 64),
    ]:
        set_formula_weights(model)
        model.eval()
        x = torch.from_numpy(formula_value('input', (2, 3, size, size)))
        logits = model(x)
        summary[name] = {'inputShape': [2, 3, size, size], 'evalLogits': to_list(logits)}
    with open(os.path.join(OUT, 'logits.json'), 'w') as f:
        json.dump(summary, f, separators=(',', ':'))


class Evil:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


def checkpoint_fixtures():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 5))
    net.train()
    net(torch.randn(4, 2, 4, 4))  # non-trivial running statistics, num_batches_tracked = 1
    sd = net.state_dict()
    torch.save(sd, os.path.join(OUT, 'tiny.pth'))
    torch.save(sd, os.path.join(OUT, 'tiny-legacy.pth'), _use_new_zipfile_serialization=False)
    torch.save({'state_dict': sd, 'epoch': 3, 'best_acc': 0.5}, os.path.join(OUT, 'tiny-wrapped.pth'))
    torch.save({'model': {'module.' + k: v for k, v in sd.items()}, 'step': 10}, os.path.join(OUT, 'tiny-module-prefix.pth'))
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    extra = {
        'transposed': base.t(),  # strided view into a shared storage
        'sliced': base[1:3, ::2],  # storage offset and strides
        'half': torch.linspace(-2, 2, 7).half(),
        'double': torch.tensor([1e-300, 2.5, -3.0], dtype=torch.float64),
        'long': torch.tensor([0, 5, -7, 2 ** 40]),
        'bfloat': torch.tensor([1.5, -0.25, 3e38]).bfloat16(),
        'parameter': nn.Parameter(torch.tensor([[0.5, -1.0]])),  # pickled through _rebuild_parameter
    }
    torch.save(extra, os.path.join(OUT, 'dtypes.pth'))
    values = {k: {'shape': list(v.shape), 'values': to_list(v)} for k, v in {**sd, **extra}.items()}
    with open(os.path.join(OUT, 'tiny-values.json'), 'w') as f:
        json.dump(values, f, separators=(',', ':'))
    # Malicious: a zip checkpoint whose pickle calls os.system, and a legacy one calling builtins.eval.
    torch.save({'weight': torch.zeros(2), 'payload': Evil(os.system, 'echo pwned > /tmp/ptslab-pwned')}, os.path.join(OUT, 'malicious-os-system.pth'))
    torch.save({'payload': Evil(eval, '1 + 1')}, os.path.join(OUT, 'malicious-eval-legacy.pth'), _use_new_zipfile_serialization=False)


def optimizer_fixture():
    torch.manual_seed(42)
    x = torch.randn(6, 4)
    y = torch.tensor([0, 2, 1, 2, 0, 1])
    ref = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3))
    init = {k: v.clone() for k, v in ref.state_dict().items()}
    configs = {
        'sgd': lambda m: torch.optim.SGD([
            {'params': m[0].parameters()},
            {'params': m[2].parameters(), 'lr': 0.05, 'weight_decay': 0.0},
        ], lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
        'sgd_dampening': lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.8, dampening=0.3, weight_decay=0.02),
        'adam': lambda m: torch.optim.Adam(m.parameters(), lr=0.01, betas=(0.8, 0.95), weight_decay=0.05),
        'adam_amsgrad': lambda m: torch.optim.Adam(m.parameters(), lr=0.01, amsgrad=True),
        'adamw': lambda m: torch.optim.AdamW(m.parameters(), lr=0.01, weight_decay=0.1),
    }
    out = {'x': to_list(x), 'y': y.tolist(), 'init': {k: to_list(v) for k, v in init.items()}, 'steps': 3, 'results': {}}
    for name, make in configs.items():
        m = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3))
        m.load_state_dict(init)
        opt = make(m)
        losses = []
        for _ in range(3):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(m(x), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        out['results'][name] = {'losses': losses, 'weights': {k: to_list(v) for k, v in m.state_dict().items()}}
    with open(os.path.join(OUT, 'optim.json'), 'w') as f:
        json.dump(out, f, separators=(',', ':'))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(2)
    keys_fixture()
    logits_fixtures()
    checkpoint_fixtures()
    optimizer_fixture()
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f'wrote {len(os.listdir(OUT))} files, {total / 1e6:.2f} MB, to {os.path.normpath(OUT)}', file=sys.stderr)


if __name__ == '__main__':
    main()
