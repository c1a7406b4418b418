# shellcheck shell=bash
# Sourced by scripts/run and scripts/test: make ./.venv and install Atelier into it.
# Re-installs only when pyproject.toml changes, so later runs start at once.
#
# A .venv that cannot be used (a first set-up that stopped halfway, a Python that was
# removed or upgraded since, one older than 3.11) is made again; it held nothing else.
#
# PYTHON: the interpreter to build .venv with (default python3; 3.11 or newer).
# ATELIER_TORCH: which PyTorch goes into .venv.
#   unset   whatever pip picks for pyproject's `torch>=2.4` (PyPI's wheel: CUDA on Linux)
#   cuda    PyPI's wheel; replaces a CPU-only build that is installed
#   cpu     PyTorch's CPU-only build, from $ATELIER_TORCH_INDEX (default: PyTorch's CPU
#           index); replaces a CUDA build that is installed
#   other   a pip requirement, e.g. torch==2.13.0, installed when torch is missing

ATELIER_CPU_INDEX="https://download.pytorch.org/whl/cpu"

say() { echo "scripts: $*" >&2; }

python_ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; }

# Why ./.venv cannot be used, or nothing when it can (or does not exist yet).
venv_problem() {
  [ -e .venv ] || return 0
  if [ ! -x .venv/bin/python ] && [ ! -L .venv/bin/python ]; then
    echo "it has no bin/python (its set-up stopped halfway)"
  elif ! .venv/bin/python -c '' >/dev/null 2>&1; then
    echo "its Python no longer runs (removed or upgraded since?)"
  elif ! python_ok .venv/bin/python; then
    echo "it has $(.venv/bin/python -V 2>&1); Atelier needs Python 3.11 or newer"
  elif ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
    echo "it has no pip (its set-up stopped halfway)"
  fi
}

make_venv() {
  local python="$1"
  if ! command -v "$python" >/dev/null; then
    say "no $python here: install Python 3.11 or newer, or name one: PYTHON=python3.12 $0"
    exit 1
  fi
  if ! python_ok "$python"; then
    say "$python is $("$python" -V 2>&1); Atelier needs 3.11 or newer: PYTHON=python3.12 $0"
    exit 1
  fi
  if ! "$python" -m venv .venv || ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
    rm -rf .venv
    say "could not make .venv with $python (on Debian or Ubuntu: sudo apt install python3-venv)"
    exit 1
  fi
  .venv/bin/python -m pip install --quiet --upgrade pip
}

install_torch() {
  local want="${ATELIER_TORCH:-}" have
  [ -n "$want" ] || return 0
  have="$(python -c 'import torch; print("cuda" if torch.version.cuda else "cpu")' 2>/dev/null)" \
    || have=none
  case "$want" in
    cpu | cuda)
      [ "$have" != "$want" ] || return 0
      [ "$have" = none ] || python -m pip uninstall --quiet --yes torch
      if [ "$want" = cpu ]; then
        say "installing PyTorch's CPU-only build"
        python -m pip install --quiet torch --index-url "${ATELIER_TORCH_INDEX:-$ATELIER_CPU_INDEX}"
      else
        say "installing PyTorch with CUDA (a download of a few GB)"
        python -m pip install --quiet torch
      fi
      ;;
    *)
      [ "$have" = none ] || return 0
      python -m pip install --quiet "$want"
      ;;
  esac
}

ensure_venv() {
  local extras="$1" problem
  problem="$(venv_problem)"
  if [ -n "$problem" ]; then
    say "./.venv cannot be used: $problem; making it again"
    rm -rf .venv
  fi
  [ -e .venv ] || make_venv "${PYTHON:-python3}"
  # shellcheck disable=SC1091
  . .venv/bin/activate
  install_torch
  local stamp=".venv/.atelier-${extras:-base}"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    python -m pip install --quiet -e ".${extras:+[$extras]}"
    # The tests need spandrel ([upscale]), without the torchvision it pulls: PyPI's
    # Linux torchvision is a CUDA build that breaks the CPU torch they run on.
    [ "$extras" != test ] || python -m pip install --quiet --no-deps "spandrel>=0.4,<0.5"
    touch "$stamp"
  fi
}
