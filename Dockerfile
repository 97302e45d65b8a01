# Production image: gunicorn serving Django, static files collected at build and served by WhiteNoise.
# The same image runs the web, the Celery worker, Celery beat and the Stripe stand-in (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    TIERWISE_VAR_DIR=/app/var \
    PORT=8000

RUN useradd --create-home --uid 10001 --user-group tierwise \
    && mkdir -p /app/var \
    && chown tierwise:tierwise /app /app/var
WORKDIR /app

# Dependencies first, in their own layer: pyproject.toml declares no packages, so `pip install .`
# installs exactly the runtime dependencies and is cached until pyproject.toml changes.
# EXTRAS="[dev]" builds the Stripe stand-in's image (localstripe is a dev-only dependency).
COPY pyproject.toml ./
ARG EXTRAS=""
RUN pip install ".${EXTRAS}"

COPY --chown=tierwise:tierwise . .
USER tierwise

# Settings refuse to import without SECRET_KEY outside DEBUG; this one exists only for this build step.
RUN SECRET_KEY=build-only-not-used-at-runtime python manage.py collectstatic --noinput

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "scripts/healthcheck.py"]

CMD ["sh", "-c", "exec gunicorn config.wsgi:application --bind 0.0.0.0:${PORT} --workers ${WEB_CONCURRENCY:-3} --threads 4 --access-logfile - --forwarded-allow-ips='*'"]
