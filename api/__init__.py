"""Trinity's REST contract (/api/v1): the FastAPI app, SQLModel tables, auth and the error body.

Build the app with :func:`api.app.create_app`; serve it with ``trinity api``.
"""
