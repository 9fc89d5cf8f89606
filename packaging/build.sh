#!/usr/bin/env bash
# Build the desktop bundle: dist/QuantBench/quantbench (one folder, runs without Python) and a compressed
# archive of it, dist/QuantBench-<version>-linux-<arch>.tar.zst. See packaging/README.md.
#
#   packaging/build.sh                 # uses .venv (made and filled with '.[packaging]' when missing)
#   packaging/build.sh --cpu-variant   # also dist/QuantBench-cpu: without the CUDA libraries only a GPU loads
#   PYTHON=/path/to/python packaging/build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cpu_variant=0
[[ "${1:-}" == "--cpu-variant" ]] && cpu_variant=1

if [[ -z "${PYTHON:-}" ]]; then
    if [[ ! -x .venv/bin/python ]]; then
        python3 -m venv .venv
        .venv/bin/pip install -e '.[packaging]'
    fi
    PYTHON=.venv/bin/python
fi
"$PYTHON" -c "import PyInstaller" 2>/dev/null || "$PYTHON" -m pip install 'pyinstaller>=6.11'

version=$("$PYTHON" -c "from core import quantbench_version; print(quantbench_version())")
suffix="${version}-linux-$(uname -m).tar.zst"

archive() {  # archive FOLDER NAME: dist/NAME-<version>-linux-<arch>.tar.zst (zstd; gzip where zstd is missing)
    local out="dist/$2-$suffix"
    if command -v zstd >/dev/null; then
        # zstd -9: the same size as -12 on this bundle (2.49 GB), in a quarter of the time.
        tar -C dist -cf - "$1" | zstd -q -T0 -9 -o "$out" --force
    else
        out="${out%.zst}.gz"
        tar -C dist -czf "$out" "$1"
    fi
    echo "$1: unpacked $(du -sh "dist/$1" | cut -f1), compressed $(du -sh "$out" | cut -f1)  $out"
}

start=$(date +%s)
rm -rf dist/QuantBench dist/QuantBench-cpu
"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build/pyinstaller packaging/quantbench.spec
# Beside the executable: what installs the menu entry, icon and metainfo (see install.sh).
cp packaging/install.sh packaging/org.quantbench.QuantBench.desktop packaging/org.quantbench.QuantBench.metainfo.xml \
    dist/QuantBench/
built=$(date +%s)
echo "PyInstaller: $((built - start)) s"
archive QuantBench QuantBench
echo "archive: $(($(date +%s) - built)) s"
if ((cpu_variant)); then
    "$PYTHON" packaging/cpu_variant.py dist/QuantBench dist/QuantBench-cpu
    archive QuantBench-cpu QuantBench-cpu
fi
