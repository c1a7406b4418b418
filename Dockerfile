# Atelier for a host with an NVIDIA GPU; see docs/OPERATIONS.md ("Docker"):
#   docker compose up -d                 # compose.yaml: GPU, volumes, tokens
# or by hand:
#   docker build -t atelier .
#   docker run --gpus all -e TELEGRAM_TOKEN -e DISCORD_TOKEN \
#     -v $PWD/config.toml:/config/config.toml:ro -v atelier-data:/data \
#     -v $PWD/models:/models:ro -v hf-cache:/hf atelier
# Relative paths in the config are read from its folder, /config. /config/data and
# /config/models lead to the /data and /models volumes, so a config written by
# `python -m bot init` (storage "data", models under "./models/") works unchanged, and
# so do absolute ones ("/data", "/models/...").
FROM pytorch/pytorch:2.8.0-cuda12.8-cudnn9-runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HOME=/hf \
    ATELIER_CONFIG=/config/config.toml

# The base image's torch (with CUDA) satisfies pyproject's `torch>=2.4`, so pip keeps it.
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY engine ./engine
RUN pip install . \
    && useradd --create-home --uid 1000 atelier \
    && mkdir -p /data /hf /models /config \
    && ln -s /data /config/data \
    && ln -s /models /config/models \
    && chown atelier:atelier /data /hf

USER atelier
# Named volumes start with these folders' owner, so the non-root user can write them.
VOLUME ["/data", "/hf"]
CMD ["python", "-m", "bot", "run"]
