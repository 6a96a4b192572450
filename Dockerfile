# The broker under gunicorn, as a non-root user. Mount the TOML file and pass secrets as
# environment variables (the file refers to them as "env:NAME").
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    BROKER_CONFIG=/config/broker.toml

WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
COPY broker ./broker
COPY templates ./templates
# Every dependency at the version the tests ran with, then the broker itself without any.
RUN pip install -r requirements.lock && pip install --no-deps . && useradd --system --uid 10001 --home-dir /data broker \
    && mkdir -p /data && chown broker /data

USER broker
WORKDIR /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/healthz')"
# broker serve: migrations and gc first, then gunicorn with its lines as JSON (no access log).
CMD ["broker", "serve", "--config", "/config/broker.toml", "--host", "0.0.0.0", "--port", "8000", \
     "--workers", "2", "--threads", "4"]
