"""Business logic behind the routes: keyword-only functions on a session, raising api.errors."""
