#!/usr/bin/python3
"""Golden fixtures for ptslab's CIFAR ResNets (nn/models/cifar-resnet.ts), written to tests/fixtures/cifar-resnet/.

Run with Debian's interpreter (the python3 on PATH has no torch):
    /usr/bin/python3 scripts/make-cifar-resnet-fixture.py
Reproducible: every random draw is seeded, so every file is rewritten identically.

The reference is the common PyTorch implementation of He et al.'s CIFAR ResNets (akamaster/pytorch_resnet_cifar10,
resnet.py), copied below as it is there: BasicBlock with `shortcut` (option A: a LambdaLayer padding x[:, :, ::2, ::2]
with planes // 4 zero channels on both sides; option B: 1x1 conv + BN), classifier `linear`, F.avg_pool2d over the
whole map, kaiming_normal_ init of conv and linear weights. tests/nn-cifar-resnet.test.ts reads:
- resnet20-A.safetensors: the state_dict of resnet20 with option A under the common implementation's names (`linear.*`,
  which the test maps to ptslab's `fc.*`): torch-initialised weights, random BN affine parameters and random running
  statistics (randomise_bn), num_batches_tracked 7. The float tensors are stored as float16
  to keep the file at 0.5 MB (float32 would be 1.1 MB); the model is rounded to those float16 values *before* the
  golden outputs are computed, so the check is exact in float32, not approximate.
- resnet20-A-io.safetensors (float32): the input batch `input` [2, 3, 32, 32], `eval_logits`, `train_logits` (one
  forward in train mode, from the eval-mode state) and every BN's running_mean / running_var after that forward
  (`after.<bn key>.running_mean`, ...).
- golden.json: parameter counts and state_dict entry counts of depths 8, 14, 20, 32, 44, 56, 110 with both shortcuts,
  resnet20 option A's keys and shapes, and eval logits of resnet32 and resnet110 with both shortcuts with *formula
  weights* (every value a hash of its ptslab state_dict key and index, formula_value as in make-torch-fixtures.py,
  each bn2.weight times 0.25; mirrored in the test) on a formula input [2, 3, 16, 16]: deeper networks checked for a
  few hundred bytes. Option B is checked against the common implementation's option B (ptslab names its shortcut
  downsample.0 / .1, as torchvision).
This script also checks that the common implementation's option B, given tests/fixtures/torch/resnet20.safetensors
(make-torch-fixtures.py's torchvision-block CIFAR ResNet, which ptslab's option B is checked against) with downsample.*
renamed to shortcut.*, gives that fixture's logits. Needs torch and numpy only (no torchvision).
"""

import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.init as init

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', 'tests', 'fixtures', 'cifar-resnet')



# ---- formula weights: as make-torch-fixtures.py's (which needs torchvision, not needed here), mirrored in the test ----

from fixture_weights import fnv1a, formula_value, hash_uniform  # noqa: E402,F401  (shared with the other fixture scripts)


# ---- safetensors: the reference writer's layout (the safetensors package is not in Debian) ----

def save_safetensors(path, tensors, metadata):
    """u64 little-endian header length, JSON header with __metadata__ first padded with spaces to a multiple of 8,
    raw little-endian data. int64 as I64, float16 as F16, everything else as F32."""
    header = {'__metadata__': metadata}
    blobs, offset = [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        if t.dtype == torch.int64:
            dtype, b = 'I64', t.numpy().astype('<i8').tobytes()
        elif t.dtype == torch.float16:
            dtype, b = 'F16', t.numpy().astype('<f2').tobytes()
        else:
            dtype, b = 'F32', t.float().numpy().astype('<f4').tobytes()
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


def load_safetensors(path):
    """F32 / I64 tensors of a safetensors file, by name."""
    with open(path, 'rb') as f:
        data = f.read()
    (n,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for name, e in header.items():
        if name == '__metadata__':
            continue
        lo, hi = e['data_offsets']
        dt = {'F32': '<f4', 'I64': '<i8'}[e['dtype']]
        out[name] = torch.from_numpy(np.frombuffer(body[lo:hi], dtype=dt).copy().reshape(e['shape']))
    return out


# ---- akamaster/pytorch_resnet_cifar10 resnet.py (the common implementation), unchanged but for style ----

def _weights_init(m):
    if isinstance(m, nn.Linear) or isinstance(m, nn.Conv2d):
        init.kaiming_normal_(m.weight)


class LambdaLayer(nn.Module):
    def __init__(self, lambd):
        super().__init__()
        self.lambd = lambd

    def forward(self, x):
        return self.lambd(x)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1, option='A'):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            if option == 'A':
                self.shortcut = LambdaLayer(lambda x: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4), "constant", 0))
            elif option == 'B':
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_planes, self.expansion * planes, kernel_size=1, stride=stride, bias=False),
                    nn.BatchNorm2d(self.expansion * planes),
                )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        out = F.relu(out)
        return out


class ResNet(nn.Module):
    def __init__(self, block, num_blocks, num_classes=10, option='A'):
        super().__init__()
        self.in_planes = 16
        self.option = option
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._make_layer(block, 16, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, 32, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(block, 64, num_blocks[2], stride=2)
        self.linear = nn.Linear(64, num_classes)
        self.apply(_weights_init)

    def _make_layer(self, block, planes, num_blocks, stride):
        strides = [stride] + [1] * (num_blocks - 1)
        layers = []
        for stride in strides:
            layers.append(block(self.in_planes, planes, stride, self.option))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer1(out)
        out = self.layer2(out)
        out = self.layer3(out)
        out = F.avg_pool2d(out, out.size()[3])
        out = out.view(out.size(0), -1)
        out = self.linear(out)
        return out


def cifar_resnet(depth, option='A', num_classes=10):
    assert (depth - 2) % 6 == 0
    n = (depth - 2) // 6
    return ResNet(BasicBlock, [n, n, n], num_classes, option)


# ---- key names: the common implementation's -> ptslab's ----

def ptslab_key(k):
    """ptslab's name for a key of the common implementation: linear -> fc, option B's shortcut.N -> downsample.N."""
    if k.startswith('linear.'):
        k = 'fc.' + k[len('linear.'):]
    return k.replace('.shortcut.', '.downsample.')


def set_formula_weights_ptslab_names(model):
    """formula_value of every entry, keyed by its ptslab name (so the test computes the same weights), with each
    block's bn2.weight times 0.25 (exact in float32): at full scale the residual branches compound over the blocks
    (resnet110's logits reach 1e7), at a quarter the logits of every depth stay below 3, where 1e-5 is a tight check."""
    with torch.no_grad():
        for k, t in model.state_dict().items():
            if k.endswith('num_batches_tracked'):
                t.zero_()
            else:
                v = formula_value(ptslab_key(k), tuple(t.shape))
                t.copy_(torch.from_numpy(v * np.float32(0.25) if k.endswith('.bn2.weight') else v))


def randomise_bn(model, gen):
    """Random BN statistics and affine parameters: running mean ~ N(0, 0.1^2), var ~ U(0.5, 1.5), bias ~ N(0, 0.1^2),
    weight ~ U(0.5, 1.5) except each block's bn2 (the end of its residual branch), U(0.1, 0.4) as in trained ResNets:
    with U(0.5, 1.5) there too the branches compound, the logits reach 60 and torch's own float32 result differs from
    float64 by 1.6e-5, more than the test's 1e-5."""
    for name, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
            if name.endswith('.bn2'):
                m.weight.data.copy_(torch.rand(c, generator=gen) * 0.3 + 0.1)
            else:
                m.weight.data.copy_(torch.rand(c, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=gen) * 0.1)
            m.num_batches_tracked.fill_(7)


def to_list(t):
    return [float(v) for v in t.detach().double().flatten()]


@torch.no_grad()
def resnet20_a():
    torch.manual_seed(2022)  # the common implementation's own initialisation
    gen = torch.Generator().manual_seed(2022)
    model = cifar_resnet(20, 'A')
    randomise_bn(model, gen)
    for t in model.state_dict().values():  # round to what the file stores (float16), so the outputs are exact for it
        if t.is_floating_point():
            t.copy_(t.half().float())
    sd = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    # Written before the train-mode forward below moves the running statistics: the eval logits use these.
    save_safetensors(os.path.join(OUT, 'resnet20-A.safetensors'), sd, {'source': f'torch {torch.__version__}', 'model': 'resnet20 option A (akamaster/pytorch_resnet_cifar10 names)'})
    x = torch.randn(2, 3, 32, 32, generator=gen)
    model.eval()
    io = {'input': x, 'eval_logits': model(x)}
    model.train()
    io['train_logits'] = model(x)
    for name, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            io[f'after.{name}.running_mean'] = m.running_mean.clone()
            io[f'after.{name}.running_var'] = m.running_var.clone()
    save_safetensors(os.path.join(OUT, 'resnet20-A-io.safetensors'), io, {'source': f'torch {torch.__version__}'})


@torch.no_grad()
def option_b_matches_committed_fixture():
    """The common implementation's option B, given tests/fixtures/torch/resnet20.safetensors (the torchvision-block
    CIFAR ResNet of make-torch-fixtures.py that ptslab's option B is checked against, ptslab's names) with downsample.*
    renamed to shortcut.* and fc.* to linear.*, gives that fixture's eval logits."""
    fix = os.path.join(HERE, '..', 'tests', 'fixtures', 'torch')
    sd = load_safetensors(os.path.join(fix, 'resnet20.safetensors'))
    golden = json.load(open(os.path.join(fix, 'logits.json')))['resnet20']
    m = cifar_resnet(20, 'B')
    names = {ptslab_key(k): k for k in m.state_dict()}
    assert set(names) == set(sd), 'option B keys differ from the committed resnet20 fixture'
    m.load_state_dict({names[k]: v for k, v in sd.items()})
    m.eval()
    x = torch.tensor(golden['input'], dtype=torch.float32).reshape(golden['inputShape'])
    d = (m(x).double().flatten() - torch.tensor(golden['evalLogits'], dtype=torch.float64)).abs().max().item()
    assert d < 1e-5, f'option B differs from the torchvision-block fixture by {d}'
    print(f'option B = the torchvision-block resnet20 fixture (max abs logit difference {d:.2e})', file=sys.stderr)


@torch.no_grad()
def golden():
    out = {'counts': {}, 'resnet20-A-keys': None, 'formula': {}}
    for depth in (8, 14, 20, 32, 44, 56, 110):
        for option in ('A', 'B'):
            m = cifar_resnet(depth, option)
            out['counts'][f'{depth}{option}'] = {
                'numParameters': sum(p.numel() for p in m.parameters()),
                'stateDictEntries': len(m.state_dict()),
            }
    out['resnet20-A-keys'] = [[k, list(v.shape)] for k, v in cifar_resnet(20, 'A').state_dict().items()]
    x = torch.from_numpy(formula_value('input', (2, 3, 16, 16)))
    for depth, option in ((32, 'A'), (110, 'A'), (32, 'B'), (110, 'B')):
        m = cifar_resnet(depth, option)
        set_formula_weights_ptslab_names(m)
        m.eval()
        out['formula'][f'resnet{depth}-{option}'] = {'inputShape': list(x.shape), 'evalLogits': to_list(m(x))}
    with open(os.path.join(OUT, 'golden.json'), 'w') as f:
        json.dump(out, f, separators=(',', ':'))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(2)
    option_b_matches_committed_fixture()
    resnet20_a()
    golden()
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f'wrote {len(os.listdir(OUT))} files, {total / 1e6:.2f} MB, to {os.path.normpath(OUT)}', file=sys.stderr)


if __name__ == '__main__':
    main()
