"""PyTorch's side of `npm run bench` (scripts/bench.ts, through scripts/bench-peer.ts): the same whole-model cases
timed in PyTorch on 2 threads, so every ptslab row of those cases has a peer measured in the same run.

One process serves the whole bench over JSON lines. It first prints {"ready": true, "torch": VERSION, "threads": 2},
or {"error": "import torch failed: ..."} and exits 1. Then, per line on stdin:
  {"case": C, "batch": B, "reps": R}  ->  {"case": C, "batch": B, "ms": median, "times": [...], "prepared": bool}
      The first request for a (case, batch) builds the model and runs one warm-up step (excluded: "prepared" is true
      on that reply); R = 0 prepares only ("ms" null). Only the latest case is kept, so memory stays one model's.
  {"case": "params", "arch": A}       ->  {"case": "params", "arch": A, "numParameters": n, "stateDict": [[key, shape]]}
  anything that fails                 ->  {"error": "..."} (the process keeps serving)
Timing: time.perf_counter around each step; the median of the reps (the lower middle one, as bench.ts takes it).

Cases (C, at any batch):
  resnet18-train-step, mobilenetv2-train-step  224x224 train mode: forward, cross-entropy, backward, SGD(lr 0.01,
      momentum 0.9) step, zero_grad (set_to_none, as ptslab's zeroGrad)
  resnet18-infer      eval-mode forward under no_grad, 224x224
  resnet18-s90-infer  the same on a ResNet-18 pruned to 90% by global magnitude (dense kernels: PyTorch has no sparse
      convolution path; the row exists to compare against ptslab's sparse one)
  resnet20-fcpts-step one FCPTS iteration as sparsity/fcpts.ts + distill.ts run it (see FcptsStep)

ResNet-18 and MobileNetV2 are torchvision's architectures written out (no torchvision on Debian here), with its
module names, so state_dict keys and shapes can be checked against ptslab's models (tests/bench-peer.test.ts).
The ResNet-20 is scripts/torch_cifar_resnet.py's CifarResNet (option B, ptslab's keys).
"""

import copy
import gc
import json
import math
import os
import sys
import time

try:
    import torch
except Exception as e:  # ModuleNotFoundError, or a broken install
    print(json.dumps({'error': f'import torch failed: {type(e).__name__}: {e}'}), flush=True)
    sys.exit(1)

import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import parametrize

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_cifar_resnet import BasicBlock, CifarResNet  # noqa: E402  (torchvision's BasicBlock is the same block)

THREADS = 2


# torchvision's ResNet-18 (BasicBlock, [2, 2, 2, 2], 7x7 stem, max pool) and its init; the block is
# torch_cifar_resnet's, which has torchvision's BasicBlock layout, keys and forward.

class ResNet18(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = 64
        for i, (planes, stride) in enumerate([(64, 1), (128, 2), (256, 2), (512, 2)]):
            setattr(self, f'layer{i + 1}', nn.Sequential(BasicBlock(inplanes, planes, stride), BasicBlock(planes, planes, 1)))
            inplanes = planes
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# torchvision's MobileNetV2 (width 1.0): Conv2dNormActivation as Sequential(conv, BN, ReLU6), inverted residuals
# from the (t, c, n, s) table, a 1x1 conv to 1280 channels, Dropout(0.2) + Linear classifier, and its init.

def make_divisible(v, divisor=8, min_value=None):
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def conv_bn_relu6(inp, oup, kernel_size=3, stride=1, groups=1):
    return nn.Sequential(
        nn.Conv2d(inp, oup, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(oup),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = [conv_bn_relu6(inp, hidden, kernel_size=1)] if expand_ratio != 1 else []
        layers += [conv_bn_relu6(hidden, hidden, stride=stride, groups=hidden), nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    SETTING = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]

    def __init__(self, num_classes=1000, width_mult=1.0, dropout=0.2):
        super().__init__()
        inp = make_divisible(32 * width_mult)
        last = make_divisible(1280 * max(1.0, width_mult))
        features = [conv_bn_relu6(3, inp, stride=2)]
        for t, c, n, s in self.SETTING:
            out = make_divisible(c * width_mult)
            for i in range(n):
                features.append(InvertedResidual(inp, out, s if i == 0 else 1, t))
                inp = out
        features.append(conv_bn_relu6(inp, last, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(last, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out')
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


ARCHS = {
    'resnet18': lambda: ResNet18(),
    'mobilenetv2': lambda: MobileNetV2(),
    'resnet20': lambda: CifarResNet(20, classes=10, in_channels=1),
}


def prunable(model):
    """Every Conv2d and Linear, as sparsity/prunable.ts finds them (named_modules order)."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


# The cases: each is built (model, data, optimizer) by its class and runs one step per call.

class TrainStep:
    def __init__(self, arch, batch):
        self.model = ARCHS[arch]()
        self.model.train()
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.x = torch.randn(batch, 3, 224, 224)
        self.y = torch.tensor([(i * 37) % 1000 for i in range(batch)])

    def __call__(self):
        loss = F.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)


class Infer:
    def __init__(self, batch, sparsity=0.0):
        self.model = ResNet18()
        if sparsity > 0:
            # global magnitude pruning over every conv and linear weight (sparsity/prune.ts's 'global')
            with torch.no_grad():
                ws = [m.weight for m in prunable(self.model)]
                k = round(sparsity * sum(w.numel() for w in ws))
                t = torch.cat([w.abs().flatten() for w in ws]).kthvalue(k).values
                for w in ws:
                    w.mul_(w.abs() > t)
        self.model.eval()
        self.x = torch.randn(batch, 3, 224, 224)

    def __call__(self):
        with torch.no_grad():
            self.model(self.x)


class SteStep(torch.autograd.Function):
    """step(x) = [x > 0] forward, straight-through [|x| < 1] backward (sparsity/masks.ts steStep)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x.abs() < 1).to(g.dtype)


class Bridge(torch.autograd.Function):
    """S_l(t) = #{|w| <= t} / n forward; dS/dt = p(t) + p(-t) from a 100-bin histogram over [min w, max w] (torch.histc,
    count / (width n) of the bin holding the point, 0 outside) backward; no gradient to w (sparsity/bridge.ts)."""

    @staticmethod
    def forward(ctx, w, t):
        ctx.save_for_backward(w, t)
        return (w.abs() <= t).sum().to(t.dtype) / w.numel()

    @staticmethod
    def backward(ctx, g):
        w, t = ctx.saved_tensors
        lo, hi, n = w.min().item(), w.max().item(), w.numel()
        if not hi > lo:
            return None, g * 0
        counts = torch.histc(w, bins=100, min=lo, max=hi)
        width = (hi - lo) / 100

        def p(v):
            return 0.0 if v < lo or v > hi else counts[min(99, int(math.floor((v - lo) / width)))].item() / (width * n)

        tv = t.item()
        return None, g * (p(tv) + p(-tv))


class MaskedWeight(nn.Module):
    """The parametrization w -> w * step(|w| - t_l) (sparsity/masks.ts maskedWeight, 'ste'), t_l read per step."""

    def __init__(self, thresholds, i):
        super().__init__()
        self.thresholds, self.i = thresholds, i

    def forward(self, w):
        return w * SteStep.apply(w.abs() - self.thresholds[self.i])


class FcptsStep:
    """One FCPTS iteration on the Fashion-MNIST benchmark's ResNet-20 (1 channel, 10 classes, 28x28), as
    sparsity/distill.ts runs it with fcpts.ts's schedule and objective.ts's defaults: t_l = sigmoid(s_l); S_l through
    the bridge; S = sum n_l S_l / N; the student (train mode) runs with masked weights (parametrizations); the teacher
    (a frozen copy, eval mode) under no_grad; loss = T^2 KL(softmax(teacher/T) || softmax(student/T)) (T = 4, batch
    mean) + 1 * |S - 0.8|; zero_grad, backward, SGD (lr 0.01, momentum 0.9; weight decay 3e-4 on the model's
    parameters, 0 on the logits). Differences that do not change the cost: the thresholds start at each layer's 80%
    quantile of |w| (ptslab: ERK's allocation at 80%); the lr is constant (ptslab: cosine with warm-up); no
    finiteness scan of the weights (ptslab checks every iteration)."""

    TARGET, T = 0.8, 4.0

    def __init__(self, batch):
        self.student = ARCHS['resnet20']()
        self.teacher = copy.deepcopy(self.student)
        self.teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.layers = prunable(self.student)
        self.logits = []
        for m in self.layers:
            t = m.weight.detach().abs().flatten().quantile(self.TARGET).clamp(1e-6, 1 - 1e-6).item()
            self.logits.append(torch.tensor(math.log(t / (1 - t)), requires_grad=True))
        self.thresholds = [torch.sigmoid(s).detach() for s in self.logits]  # set per step; these for registration's check
        for i, m in enumerate(self.layers):
            parametrize.register_parametrization(m, 'weight', MaskedWeight(self.thresholds, i))
        self.n = [m.parametrizations.weight.original.numel() for m in self.layers]
        self.N = sum(self.n)
        self.opt = torch.optim.SGD(
            [{'params': list(self.student.parameters()), 'weight_decay': 3e-4}, {'params': self.logits, 'weight_decay': 0.0}],
            lr=0.01, momentum=0.9,
        )
        self.x = torch.randn(batch, 1, 28, 28)

    def __call__(self):
        S = 0
        for i, (m, s) in enumerate(zip(self.layers, self.logits)):
            self.thresholds[i] = torch.sigmoid(s)
            S = S + Bridge.apply(m.parametrizations.weight.original.detach(), self.thresholds[i]) * (self.n[i] / self.N)
        self.student.train()
        out = self.student(self.x)
        with torch.no_grad():
            target = self.teacher(self.x)
        kl = F.kl_div(F.log_softmax(out / self.T, 1), F.log_softmax(target / self.T, 1), reduction='batchmean', log_target=True) * self.T ** 2
        loss = kl + 1.0 * (S - self.TARGET).abs()
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f'fcpts: loss is {loss.item()}')
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()


CASES = {
    'resnet18-train-step': lambda b: TrainStep('resnet18', b),
    'mobilenetv2-train-step': lambda b: TrainStep('mobilenetv2', b),
    'resnet18-infer': lambda b: Infer(b),
    'resnet18-s90-infer': lambda b: Infer(b, 0.9),
    'resnet20-fcpts-step': lambda b: FcptsStep(b),
}


def params(arch):
    m = ARCHS[arch]()
    return {'numParameters': sum(p.numel() for p in m.parameters()), 'stateDict': [[k, list(v.shape)] for k, v in m.state_dict().items()]}


def main():
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    print(json.dumps({'ready': True, 'torch': torch.__version__, 'threads': torch.get_num_threads()}), flush=True)
    current = (None, None)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            name = req.get('case')
            if name == 'params':
                reply = {'case': name, 'arch': req['arch'], **params(req['arch'])}
            elif name in CASES:
                batch, reps = int(req['batch']), int(req.get('reps', 1))
                prepared = current[0] != (name, batch)
                if prepared:
                    current = (None, None)
                    gc.collect()
                    torch.manual_seed(0)
                    step = CASES[name](batch)
                    step()  # warm-up, excluded
                    current = ((name, batch), step)
                step = current[1]
                times = []
                for _ in range(reps):
                    t0 = time.perf_counter()
                    step()
                    times.append((time.perf_counter() - t0) * 1000)
                reply = {'case': name, 'batch': batch, 'ms': sorted(times)[(len(times) - 1) // 2] if times else None, 'times': times, 'prepared': prepared}
            else:
                reply = {'error': f'unknown case {name!r}; cases: params, {", ".join(CASES)}'}
        except Exception as e:
            reply = {'error': f'{type(e).__name__}: {e}'}
        print(json.dumps(reply), flush=True)


if __name__ == '__main__':
    main()
