#!/usr/bin/python3
"""Step 1 of the torchvision resnet50 check (scripts/check-torchvision-resnet50.sh runs both steps).

Builds torchvision's resnet50 with its own random initialisation, gives every BatchNorm random running statistics and
affine parameters (so eval-mode BN is not the identity), saves the state_dict with torch.save (zip format, ~100 MB),
and writes a seeded input and torchvision's eval-mode logits as raw little-endian float32 plus a JSON description.
Usage: /usr/bin/python3 scripts/check-torchvision-resnet50.py OUT_DIR [IMAGE_SIZE]
"""

import json
import os
import sys

import torch
import torchvision


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else '/tmp/ptslab-resnet50-check'
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 224
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    model = torchvision.models.resnet50()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c) * 0.1)
                m.running_var.copy_(torch.rand(c) + 0.5)
                m.weight.copy_(torch.rand(c) + 0.5)
                m.bias.copy_(torch.randn(c) * 0.1)
                m.num_batches_tracked.fill_(100)
        model.eval()
        x = torch.randn(1, 3, size, size)
        logits = model(x)
    torch.save(model.state_dict(), os.path.join(out, 'resnet50.pth'))
    x.numpy().astype('<f4').tofile(os.path.join(out, 'input.f32'))
    logits.numpy().astype('<f4').tofile(os.path.join(out, 'logits.f32'))
    with open(os.path.join(out, 'check.json'), 'w') as f:
        json.dump({'torch': torch.__version__, 'torchvision': torchvision.__version__, 'inputShape': list(x.shape),
                   'logitsShape': list(logits.shape), 'checkpoint': 'resnet50.pth'}, f)
    print(f'torch {torch.__version__}: saved {out}/resnet50.pth, input {list(x.shape)}, logits {list(logits.shape)}')


if __name__ == '__main__':
    main()
