#!/usr/bin/env bash
# Create ./.venv with everything vecdial needs; safe to run again (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# The CPU build of torch first (from PyTorch's CPU wheel index where it can be reached):
# a bare "torch" requirement would pull a CUDA build of several GB.
.venv/bin/python -c "import torch" 2>/dev/null || bash scripts/install_torch.sh .venv/bin/python
# The editable install is redone only when pyproject.toml changed since the last one (it builds
# a wheel in an isolated environment each time: 30 s to minutes, and .ci/run calls this twice).
stamp=$(sha256sum pyproject.toml | cut -c1-64)
if [ "$(cat .venv/.vecdial-installed 2>/dev/null)" != "$stamp" ] || ! .venv/bin/python -c "import vecdial" 2>/dev/null; then
    .venv/bin/pip install --quiet -e '.[all,test]'
    echo "$stamp" > .venv/.vecdial-installed
fi
