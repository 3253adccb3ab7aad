#!/bin/sh
# Done-criterion check for nn/ (issue 4): a torchvision resnet50 checkpoint saved with torch.save loads into
# models.resnet50() with strict = true and reproduces torchvision's logits. Needs Debian's PyTorch:
#   apt-get install -y python3-torch python3-torchvision libopenblas0-pthread
# Usage: scripts/check-torchvision-resnet50.sh [OUT_DIR] [IMAGE_SIZE]   (defaults /tmp/ptslab-resnet50-check, 224)
# The ~100 MB checkpoint stays in OUT_DIR; nothing is written to the repository.
set -eu
cd "$(dirname "$0")/.."
OUT="${1:-/tmp/ptslab-resnet50-check}"
SIZE="${2:-224}"
/usr/bin/python3 scripts/check-torchvision-resnet50.py "$OUT" "$SIZE"
npx tsc -p . >/dev/null || echo "warning: tsc reported errors; running the last build" >&2
node --enable-source-maps dist/scripts/check-torchvision-resnet50.js "$OUT"
