#!/usr/bin/env bash
# Run the built bundle as a machine without Python would, and compare its figures with the installed package's.
#
#   packaging/smoke.sh [OUT_DIR]     # after packaging/build.sh; default OUT_DIR: a new temporary folder
#
# Each bundle run starts from `env -i PATH=/usr/bin:/bin HOME=$HOME`: no virtual environment, no PYTHONPATH,
# no DISPLAY (the screenshot is drawn offscreen). Checks: --version; the demo window rendered to out.png;
# `run --demo --json` (PyTorch and ONNX Runtime variants, each built and timed in the spawned study process)
# and a LiteRT study of the shared sine models, both equal to the installed package's within noise; install.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE=${BUNDLE:-dist/QuantBench}
PYTHON=${PYTHON:-.venv/bin/python}
OUT=${1:-$(mktemp -d -t quantbench-smoke-XXXXXX)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SHARED=${QUANTBENCH_SHARED_DATA:-$(cd .. && pwd)/shared/data}
clean() { env -i PATH=/usr/bin:/bin HOME="$HOME" "$@"; }
now() { date +%s.%N; }

echo "== version"
clean "$BUNDLE/quantbench" --version

echo "== window: --demo --screenshot"
start=$(now)
clean "$BUNDLE/quantbench" --demo --screenshot "$OUT/out.png"
echo "screenshot in $(echo "$(now) - $start" | bc) s: $OUT/out.png"
"$PYTHON" - "$OUT/out.png" <<'PY'
import sys
from PIL import Image
image = Image.open(sys.argv[1])
colours = len(image.convert("RGB").resize((320, 200)).getcolors(maxcolors=320 * 200))
print(f"{sys.argv[1]}: {image.size[0]}x{image.size[1]}, {colours} colours")
assert image.size[0] >= 1280 and image.size[1] >= 800 and colours > 50, "the window looks empty"
PY

echo "== run --demo --json: the bundle, then the installed package"
clean "$BUNDLE/quantbench" run --demo --no-history --quiet --json "$OUT/bundle.json" >/dev/null
"$PYTHON" -m core.cli run --demo --no-history --quiet --json "$OUT/installed.json" >/dev/null
"$PYTHON" packaging/compare_results.py "$OUT/installed.json" "$OUT/bundle.json"

echo "== every scheme on the demo model, and a torchvision architecture (its C++ operators load from the bundle)"
every=(run --demo --no-history --quiet --max-time 0.3)
for scheme in $("$PYTHON" -c "from core.schemes.registry import catalogue; print(*(s.info.id for s in catalogue()))"); do
    every+=(--scheme "$scheme")
done
clean "$BUNDLE/quantbench" "${every[@]}" --json "$OUT/bundle-every.json" >/dev/null
"$PYTHON" -m core.cli "${every[@]}" --json "$OUT/installed-every.json" >/dev/null
"$PYTHON" packaging/compare_results.py "$OUT/installed-every.json" "$OUT/bundle-every.json"
vision=(run --model torchvision:mobilenet_v3_small --dataset synthetic:16 --scheme torch-int8-dynamic --scheme onnx-fp32
        --no-history --quiet --max-time 0.3)
clean "$BUNDLE/quantbench" "${vision[@]}" --json "$OUT/bundle-vision.json" >/dev/null
"$PYTHON" -m core.cli "${vision[@]}" --json "$OUT/installed-vision.json" >/dev/null
"$PYTHON" packaging/compare_results.py "$OUT/installed-vision.json" "$OUT/bundle-vision.json"

if [[ -f "$SHARED/hello_world_float.tflite" ]]; then
    echo "== LiteRT: the float sine model against its int8 twin"
    "$PYTHON" -c "import numpy as np, sys; x = np.linspace(0, 6.28, 400, dtype=np.float32)[:, None]; \
np.savez(sys.argv[1], x=x, y=np.sin(x[:, 0]))" "$OUT/sine.npz"
    litert=(run --model "$SHARED/hello_world_float.tflite" --variant "$SHARED/hello_world_int8.tflite"
            --dataset "npz:$OUT/sine.npz" --no-history --quiet --max-time 0.5)
    clean "$BUNDLE/quantbench" "${litert[@]}" --json "$OUT/bundle-litert.json" >/dev/null
    "$PYTHON" -m core.cli "${litert[@]}" --json "$OUT/installed-litert.json" >/dev/null
    "$PYTHON" packaging/compare_results.py "$OUT/installed-litert.json" "$OUT/bundle-litert.json"
else
    echo "== LiteRT: skipped ($SHARED/hello_world_float.tflite not found; set QUANTBENCH_SHARED_DATA)"
fi
echo "== install.sh: menu entry, icon and metainfo into a private prefix"
PREFIX="$OUT/prefix" "$BUNDLE/install.sh"
if command -v desktop-file-validate >/dev/null; then
    desktop-file-validate "$OUT/prefix/share/applications/org.quantbench.QuantBench.desktop"
fi
"$OUT/prefix/bin/quantbench" --version
PREFIX="$OUT/prefix" "$BUNDLE/install.sh" --uninstall

echo "smoke passed: $OUT"
