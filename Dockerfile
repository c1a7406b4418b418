# Atelier for a host with an NVIDIA GPU (see README, "Docker"):
#   docker build -t atelier .
#   docker run --gpus all -e TELEGRAM_TOKEN -e DISCORD_TOKEN \
#     -v $PWD/config.toml:/config/config.toml:ro -v atelier-data:/data -v hf-cache:/hf atelier
# In config.toml set [storage] path = "/data": relative paths are read from /config.
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
    && mkdir -p /data /hf /config \
    && chown atelier:atelier /data /hf

USER atelier
# Named volumes start with these folders' owner, so the non-root user can write them.
VOLUME ["/data", "/hf"]
CMD ["python", "-m", "bot", "run"]
