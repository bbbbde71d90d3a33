"""The HTTP API: FastAPI routers (one per resource), auth, errors and the app factory."""
