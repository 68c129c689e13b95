# mexc-paper: a paper-trading sidecar for MEXC Spot V3.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PROXY_CONFIG=/app/config.yaml \
    MEXC_PAPER_DB=/data/paper.sqlite3

WORKDIR /app
COPY pyproject.toml README.md config.yaml ./
COPY proxy ./proxy
COPY cassettes ./cassettes
RUN pip install --no-cache-dir . \
    && groupadd --system --gid 10001 paper \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin paper \
    && mkdir -p /data \
    && chown paper:paper /data

USER 10001:10001
VOLUME /data
EXPOSE 8080

# no curl in the slim image: ask /healthz with the Python that is already there. /healthz is
# 200 while MEXC is unreachable ("degraded": restarting would not bring it back), 503 only
# when the database cannot be written
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"]

CMD ["python", "-m", "proxy", "--host", "0.0.0.0", "--port", "8080"]
