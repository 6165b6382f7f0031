#!/usr/bin/env bash
# Run THERE (the GPU machine: torch, torchvision, Lightning, tensorboard, scikit-learn and matplotlib
# installed; no hydra-core, omegaconf or antlr4; no network), in the repository root, with the wheels/
# that scripts/gpu_wheels.sh filled here carried along (docs/gpu_machine.md):
#     bash scripts/gpu_check.sh                # writes results.json and table.md to $OUT (else gpu_check/)
#     bash scripts/gpu_check.sh --smoke        # extra arguments go to scripts/gpu_check.py
# Installs the wheels offline and without dependencies, so the machine's torch and Lightning stay as
# they are (checked: their versions before and after), then runs the check (its environment part says
# whether every requirement of ssrl's is met by what is installed). Exit status: 3 if the install failed or changed torch/Lightning, else the check's.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${OUT:-gpu_check}
versions() { "$PYTHON" -c "import torch, torchvision, pytorch_lightning as pl; print(torch.__version__, torchvision.__version__, pl.__version__)"; }

before=$(versions) || { echo "gpu_check.sh: torch, torchvision or pytorch_lightning is missing" >&2; exit 3; }
"$PYTHON" -m pip install -q --no-index --find-links wheels --no-deps --no-cache-dir \
    hydra-core omegaconf antlr4-python3-runtime ssrl || { echo "gpu_check.sh: offline install failed" >&2; exit 3; }
after=$(versions)
if [ "$before" != "$after" ]; then
    echo "gpu_check.sh: the install changed torch/torchvision/Lightning: $before -> $after" >&2
    exit 3
fi
echo "gpu_check.sh: torch, torchvision, Lightning untouched: $after"
exec "$PYTHON" scripts/gpu_check.py --out "$OUT" "$@"
