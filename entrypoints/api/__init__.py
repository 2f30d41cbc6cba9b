"""``portflow serve``: the HTTP API (FastAPI on uvicorn) over the state in Redis.

``app`` holds the routes, ``problems`` the errors, ``schemas`` the documented bodies,
``metrics`` the API's own Prometheus metrics and ``server`` where and how it listens.
Nothing connects or listens at import time.
"""
