# Sourced by scripts/run and scripts/test: make ./.venv and install Atelier into it.
# Re-installs only when pyproject.toml changes, so later runs start at once.

ensure_venv() {
  local extras="$1"
  local python="${PYTHON:-python3}"
  if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
  fi
  # shellcheck disable=SC1091
  . .venv/bin/activate
  if ! python -c "import torch" 2>/dev/null && [ -n "${ATELIER_TORCH:-}" ]; then
    python -m pip install --quiet "$ATELIER_TORCH"
  fi
  local stamp=".venv/.atelier-${extras:-base}"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    python -m pip install --quiet -e ".${extras:+[$extras]}"
    touch "$stamp"
  fi
}
