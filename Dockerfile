# lightning-ex2 on a CUDA runtime image.
#   docker build -t lightning-ex2 .
#   docker run --gpus all -v "$PWD/logs:/home/ex2/app/logs" lightning-ex2 \
#       fit --config configs/quickstart.yaml --trainer.accelerator gpu
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/venv/bin:$PATH

# The distribution's python3 (3.12) is what we want; its version follows the base image.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv \
    && useradd --create-home --uid 1001 --shell /bin/bash ex2

WORKDIR /home/ex2/app
COPY pyproject.toml README.md ./
COPY lightning_ex2 ./lightning_ex2
COPY configs ./configs

# The README's install step: torch pinned first (here PyPI's CUDA build), then the package.
RUN pip install "torch==2.13.0" \
    && pip install . \
    && mkdir -p logs \
    && chown -R 1001:1001 /home/ex2/app

USER 1001
VOLUME ["/home/ex2/app/logs"]
ENTRYPOINT ["lightning-ex2"]
CMD ["--help"]
