"""Golden values for core ops from PyTorch (Debian python3-torch; run with /usr/bin/python3).

Each case stores its float64 inputs, the op's arguments, the output, and the gradient of
sum(output * weights) w.r.t. every input, with weights[i] = sin(i + 1) over the flattened output.
tests/torch-parity.test.ts replays every case in ptslab and compares values and gradients.
Regenerate: /usr/bin/python3 scripts/make-core-fixtures.py > tests/fixtures/torch-core-ops.json
"""
import json
import torch
import torch.nn.functional as F

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)
cases = []


def rnd(*shape, lo=None, hi=None):
    t = torch.randn(*shape) if lo is None else torch.rand(*shape) * (hi - lo) + lo
    return t.requires_grad_()


def add(name, fn, inputs, args, extra=None):
    out = fn(*inputs)
    w = torch.sin(torch.arange(out.numel(), dtype=torch.float64) + 1).reshape(out.shape)
    (out * w).sum().backward()
    case = {
        "name": name,
        "args": args,
        "inputs": [{"shape": list(x.shape), "data": x.detach().flatten().tolist()} for x in inputs],
        "output": {"shape": list(out.shape), "data": out.detach().flatten().tolist()},
        "grads": [x.grad.flatten().tolist() for x in inputs],
    }
    if extra:
        case.update(extra())  # called after the forward pass, so in-place updates are seen
    cases.append(case)


for (stride, padding, dilation, groups) in [(1, 1, 1, 1), (2, 0, 1, 1), (2, 1, 2, 2), (1, 2, 1, 4), (3, 1, 1, 1)]:
    x, w, b = rnd(2, 4, 7, 6), rnd(4 if groups != 4 else 4, 4 // groups, 3, 2), rnd(4)
    a = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    add(f"conv2d s{stride} p{padding} d{dilation} g{groups}", lambda x, w, b: F.conv2d(x, w, b, **a), [x, w, b], a)

for (k, s, p, d, ceil) in [(3, 2, 1, 1, False), (3, 2, 1, 1, True), (2, 2, 0, 1, True), (3, 1, 1, 2, False), (2, 3, 1, 1, True)]:
    a = {"kernelSize": k, "stride": s, "padding": p, "dilation": d, "ceilMode": ceil}
    add(f"maxPool2d k{k} s{s} p{p} d{d} ceil{ceil}",
        lambda x: F.max_pool2d(x, k, s, p, d, ceil_mode=ceil), [rnd(1, 2, 7, 8)], a)

for (k, s, p, ceil, cip) in [(3, 2, 1, False, True), (3, 2, 1, True, False), (2, 2, 1, True, True), (3, 3, 0, True, False)]:
    a = {"kernelSize": k, "stride": s, "padding": p, "ceilMode": ceil, "countIncludePad": cip}
    add(f"avgPool2d k{k} s{s} p{p} ceil{ceil} cip{cip}",
        lambda x: F.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=cip), [rnd(1, 2, 7, 8)], a)

for size in [(1, 1), (3, 2), (5, 7)]:
    add(f"adaptiveAvgPool2d {size}", lambda x: F.adaptive_avg_pool2d(x, size), [rnd(2, 2, 7, 5)], {"outputSize": list(size)})

for training in [True, False]:
    x, w, b = rnd(3, 4, 3, 2), rnd(4), rnd(4)
    rm, rv = torch.randn(4), torch.rand(4) + 0.5
    rm0, rv0 = rm.clone(), rv.clone()
    add(f"batchNorm2d training={training}",
        lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=training, momentum=0.1, eps=1e-5), [x, w, b],
        {"training": training, "momentum": 0.1, "eps": 1e-5},
        lambda: {"runningMean": rm0.tolist(), "runningVar": rv0.tolist(),
                 "runningMeanAfter": rm.tolist(), "runningVarAfter": rv.tolist()})

for dims, keep in [((1,), False), ((0, 2), True), (None, False)]:
    a = {"dims": list(dims) if dims else None, "keepDim": keep}
    add(f"var {dims} keep={keep}",
        lambda x: x.var(dim=dims, unbiased=True, keepdim=keep) if dims else x.var(), [rnd(3, 4, 2)], a)

target = [2, 0, 4, 1]
for eps in [0.0, 0.1]:
    add(f"crossEntropy ls={eps}", lambda z: F.cross_entropy(z, torch.tensor(target), label_smoothing=eps),
        [rnd(4, 5)], {"target": target, "labelSmoothing": eps})
add("nllLoss", lambda z: F.nll_loss(F.log_softmax(z, 1), torch.tensor(target)), [rnd(4, 5)], {"target": target})
for T in [1.0, 4.0]:
    add(f"klDiv T={T}", lambda s, t: F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean") * T * T,
        [rnd(4, 5), rnd(4, 5)], {"temperature": T})
add("logSoftmax dim=1", lambda x: F.log_softmax(x, 1), [rnd(3, 4, 2)], {"dim": 1})
add("softmax dim=-1", lambda x: F.softmax(x, -1), [rnd(3, 4)], {"dim": -1})
add("mseLoss", lambda a, b: F.mse_loss(a, b), [rnd(3, 4), rnd(3, 4)], {})
add("matmul batched broadcast", lambda a, b: torch.matmul(a, b), [rnd(2, 1, 3, 4), rnd(3, 4, 2)], {})
add("matmul vector-matrix", lambda a, b: torch.matmul(a, b), [rnd(4), rnd(2, 4, 3)], {})
add("pad", lambda x: F.pad(x, (1, 2, 0, 1), value=0.5), [rnd(2, 3, 2)], {"pads": [1, 2, 0, 1], "value": 0.5})
add("relu6", lambda x: F.relu6(x * 4), [rnd(3, 5)], {})
add("max dim=1 ties", lambda x: torch.amax(x, dim=1), [torch.tensor([[1.0, 3.0, 3.0], [2.0, -1.0, 0.0]]).requires_grad_()], {"dim": 1})
add("maximum ties", lambda a, b: torch.maximum(a, b),
    [torch.tensor([1.0, 2.0, 3.0]).requires_grad_(), torch.tensor([3.0, 2.0, 1.0]).requires_grad_()], {})
add("pow", lambda a, b: torch.pow(a, b), [rnd(3, 2, lo=0.5, hi=2), rnd(2, lo=-1, hi=2)], {})
add("linear", lambda x, w, b: F.linear(x, w, b), [rnd(3, 4), rnd(5, 4), rnd(5)], {})

print(json.dumps({"torch": torch.__version__, "cases": cases}))
