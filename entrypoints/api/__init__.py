"""``portflow serve``: the HTTP API (FastAPI on uvicorn) over the state in Redis.

``app`` builds the app; ``routes`` (``/v1``) and ``service`` (health, readiness, metrics)
hold the routes, ``params`` their query parameters, ``auth`` the bearer token, ``backend``
what they read through; ``problems`` the errors, ``openapi`` and ``schemas`` the document and
its bodies, ``recent`` the answers given again, ``metrics`` the API's own Prometheus metrics
and ``server`` where and how it listens. Nothing connects or listens at import time.
"""
