#!/usr/bin/env bash
# Proves HERE that scripts/gpu_check.sh installs ssrl offline on a machine like the GPU machine and runs
# the check there (docs/gpu_machine.md). Run scripts/gpu_wheels.sh first. About a minute on 2 cores with
# --smoke (CI runs it: .ci/run), so it is a script, not a test.
#
# The GPU machine's Python has torch, torchvision, Lightning, tensorboard, scikit-learn and matplotlib,
# and no hydra-core, omegaconf or antlr4. This builds that here without copying anything large:
#   1. a folder of symbolic links to every entry of this Python's site-packages except those whose name
#      starts with hydra, omegaconf, antlr4, ssrl or __editable__ (the two Hydra distributions and their
#      plugins and launchers, omegaconf, antlr4-python3-runtime, and this repository's editable install);
#   2. a venv without pip and without --system-site-packages (which would show the real site-packages,
#      hydra included), whose only .pth file adds that folder with site.addsitedir (so the .pth files
#      left in the folder run as they do here);
#   3. a check that hydra, omegaconf and antlr4 cannot be imported there, and torch can;
#   4. scripts/gpu_check.sh run with that venv's python3 first on PATH: pip --no-index from wheels/,
#      then gpu_check.py with the arguments given (--smoke where there is no CUDA device), writing to
#      $OUT (default: a temporary folder, removed after).
# Extra arguments go to gpu_check.py. Exit status: the check's, or 3 if the setup is not as above.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
unset PYTHONPATH  # as on the GPU machine: only the checkout's root, which gpu_check.py puts on sys.path
ls wheels/*.whl >/dev/null 2>&1 || { echo "offline_install_check.sh: wheels/ is empty; run scripts/gpu_wheels.sh" >&2; exit 3; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
site=$("$PYTHON" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
mkdir "$work/gpu_site"
for entry in "$site"/*; do
    case $(basename "$entry") in
        hydra* | omegaconf* | antlr4* | ssrl* | __editable__*) ;;
        *) ln -s "$entry" "$work/gpu_site/" ;;
    esac
done
"$PYTHON" -m venv --without-pip "$work/venv"
venv_site=$("$work/venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
echo "import site; site.addsitedir('$work/gpu_site')" > "$venv_site/gpu_machine.pth"
for hidden in hydra omegaconf antlr4; do
    if (cd "$work" && "$work/venv/bin/python" -c "import $hidden" 2>/dev/null); then
        echo "offline_install_check.sh: $hidden is importable in the venv before the install" >&2
        exit 3
    fi
done
(cd "$work" && "$work/venv/bin/python" -c "import torch, pytorch_lightning") || exit 3
echo "offline_install_check.sh: hydra, omegaconf, antlr4 hidden; torch and Lightning visible"
PATH="$work/venv/bin:$PATH" OUT=${OUT:-$work/out} PYTHON=python3 bash scripts/gpu_check.sh "$@"
