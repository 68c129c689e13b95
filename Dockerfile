# mexc-paper: a paper-trading sidecar for MEXC Spot V3.
FROM python:3.11-slim

# The TLS listener (README "Zero-change mode") is on 8443 inside the container: the image
# runs as a non-root user, which may not listen below 1024 unless the runtime lowers
# net.ipv4.ip_unprivileged_port_start in the container's network namespace. Docker (>= 20.10),
# Podman and containerd 2 do that by default, but not with host networking, CRI-O or
# Kubernetes without a pod sysctl, so a default of 443 would keep the image from starting
# there. Zero-change mode needs 443 (bots connect to https://api.mexc.com:443), so its compose
# file sets MEXC_PAPER_TLS_PORT=443 and that sysctl explicitly
# (docker-compose.tls.example.yml). Not `setcap cap_net_bind_service` on python: it would give
# every Python program in the image the capability, and it is void under
# no-new-privileges or --cap-drop ALL. Publishing 443 on the host to 8443
# (-p 127.0.0.1:443:8443) needs neither, for bots on the host (the laptop recipe).
# MEXC_PAPER_TLS_NAMES: extra names for the certificate, the compose service name by default.
# MEXC_PAPER_ALLOWED_HOSTS: Host names the dashboard and the admin API answer besides
# localhost (server.allowed_hosts), the service name too, so other containers reach them
# as http://mexc-paper:8080 (changes from them still need MEXC_PAPER_ADMIN_TOKEN).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PROXY_CONFIG=/app/config.yaml \
    MEXC_PAPER_DB=/data/paper.sqlite3 \
    MEXC_PAPER_TLS_PORT=8443 \
    MEXC_PAPER_TLS_NAMES=mexc-paper \
    MEXC_PAPER_ALLOWED_HOSTS=mexc-paper

WORKDIR /app
COPY pyproject.toml README.md config.yaml ./
COPY proxy ./proxy
COPY cassettes ./cassettes
RUN pip install --no-cache-dir . \
    && groupadd --system --gid 10001 paper \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin paper \
    && mkdir -p /data /ca \
    && chown paper:paper /data /ca \
    && chmod 0700 /data

USER 10001:10001
# /data (0700: the database holds every API key and secret): the SQLite file and the local
# CA (tls/, the CA key never leaves it); a new named volume takes this mode. /ca: where
# `python -m proxy ca --out` exports the CA certificate for bots (a volume of its own)
VOLUME /data
EXPOSE 8080 8443

# no curl in the slim image: ask /healthz with the Python that is already there. /healthz is
# 200 while MEXC is unreachable ("degraded": restarting would not bring it back), 503 only
# when the database cannot be written
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"]

CMD ["python", "-m", "proxy", "--host", "0.0.0.0", "--port", "8080"]
