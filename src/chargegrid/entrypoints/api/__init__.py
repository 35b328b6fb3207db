"""The REST API under ``/api/v1`` (Litestar, served by uvicorn in the server's event loop)."""
