#!/usr/bin/env bash
# Run HERE (where PyPI is reachable), in the repository root: fills the ignored folder wheels/ with what
# the GPU machine lacks, for scripts/gpu_check.sh to install there offline (docs/gpu_machine.md).
#   hydra-core, omegaconf      pure-Python wheels from PyPI (pip download, no dependencies)
#   antlr4-python3-runtime     a wheel built here from its sdist (PyPI has no wheel of 4.9.x)
#   ssrl                       a wheel of this checkout, no dependencies
# The pins are the versions the test suite runs with; hydra-core 1.3 requires antlr4 4.9.*.
# Every wheel is py3-none-any, so the Python here need not be the GPU machine's (3.12).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
DOWNLOADED=(hydra-core==1.3.8 omegaconf==2.3.1)
BUILT=(antlr4-python3-runtime==4.9.3)

rm -rf wheels build/sdist
mkdir -p wheels build/sdist
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: -d wheels "${DOWNLOADED[@]}"
"$PYTHON" -m pip download -q --no-deps --no-binary=:all: -d build/sdist "${BUILT[@]}"
"$PYTHON" -m pip wheel -q --no-deps -w wheels build/sdist/*
"$PYTHON" -m pip wheel -q --no-deps -w wheels .
ls -l wheels
