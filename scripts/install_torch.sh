#!/usr/bin/env bash
# Install PyTorch's CPU-only build into an environment: scripts/install_torch.sh PYTHON [REQUIREMENT]
# (default requirement: torch==2.13.0; vecdial's extras accept any torch>=2.2,<3).
#
# vecdial runs torch on the CPU only. On Linux a plain `pip install torch` from PyPI is the
# CUDA build, with several GB of NVIDIA wheels. PyTorch's own CPU wheel index has the
# CPU-only build: it is used when it answers within a few seconds. Otherwise (offline, or a
# network that reaches only a PyPI mirror) pip's configured index is used as it is: point it
# at CPU wheels there (a local wheel, --find-links, PIP_INDEX_URL) to keep CUDA out.
# VECDIAL_TORCH_INDEX overrides the CPU index's address; set it empty to skip that index.
set -euo pipefail
PYTHON=${1:?usage: scripts/install_torch.sh PYTHON [REQUIREMENT]}
REQUIREMENT=${2:-torch==2.13.0}
CPU_INDEX=${VECDIAL_TORCH_INDEX-https://download.pytorch.org/whl/cpu}

reachable() {  # one request, 5 s at most (name lookup included)
    timeout 6 "$PYTHON" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1].rstrip("/") + "/torch/", timeout=5)' "$1" >/dev/null 2>&1
}

if [ -n "$CPU_INDEX" ] && reachable "$CPU_INDEX"; then
    echo "install_torch: $REQUIREMENT from PyTorch's CPU wheel index ($CPU_INDEX)"
    if "$PYTHON" -m pip install --quiet --index-url "$CPU_INDEX" "$REQUIREMENT"; then
        exit 0
    fi
    echo "install_torch: the CPU index has no $REQUIREMENT for this platform; trying pip's configured index" >&2
else
    echo "install_torch: ${CPU_INDEX:-the CPU index} is not reachable; $REQUIREMENT from pip's configured index"
fi
exec "$PYTHON" -m pip install --quiet "$REQUIREMENT"
