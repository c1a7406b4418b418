"""A warning at start when `device = "auto"` would paint on the CPU of a machine that has
an NVIDIA driver: usually PyTorch's CPU build was installed, and every picture takes
minutes instead of seconds without a word why.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import threading

from bot.config import Config

log = logging.getLogger("atelier.gpu_check")

# Run apart from the bot: the bot process does not import torch (the engine does).
_PROBE = "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available())"
PROBE_TIMEOUT_S = 120.0


def warn_if_gpu_unused(config: Config) -> threading.Thread | None:
    """Check in the background (importing torch takes seconds) and log a warning if the
    GPU would sit idle; the thread, or None when there is nothing to check.
    """
    if config.engine.device != "auto" or shutil.which("nvidia-smi") is None:
        return None
    thread = threading.Thread(target=_check, name="gpu-check", daemon=True)
    thread.start()
    return thread


def _check() -> None:
    try:
        probe = subprocess.run(
            [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired):
        return  # the engine process reports a torch that cannot even start
    lines = probe.stdout.split("\n")
    fields = lines[-2].split() if probe.returncode == 0 and len(lines) >= 2 else []
    if len(fields) != 3 or fields[2] == "True":
        return
    version, cuda = fields[0], fields[1]
    if cuda == "None":
        why = f"PyTorch {version} is a CPU-only build"
    else:
        why = (
            f"PyTorch {version} (built for CUDA {cuda}) cannot use the GPU; nvidia-smi "
            "shows whether the driver works and which CUDA version it supports"
        )
    log.warning(
        '[engine] device = "auto" will paint on the CPU, slowly, although this machine has '
        "an NVIDIA driver: %s. Install the CUDA build (ATELIER_TORCH=cuda scripts/run, or "
        'pip install --force-reinstall torch), or set device = "cpu" to keep the CPU.',
        why,
    )
