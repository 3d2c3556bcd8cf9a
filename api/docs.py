"""The interactive API docs (Swagger UI), served whole from this installation.

FastAPI's default docs page loads Swagger UI from a CDN, so on a machine that reaches nothing it
stays blank. Here the page's script, style sheet and icon are the files the ``fastapi-offline``
package ships (a maintained copy of swagger-ui-dist 5, MIT), served by the API itself under
``<docs>/assets/``; Swagger UI's online validator badge is switched off, so the page asks no other
host for anything. ``/`` and ``/docs`` on the API's port lead to the page.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

ASSETS_DIR = Path(str(resources.files("fastapi_offline") / "static"))
SHORTCUTS = ("/", "/docs")


def install_docs(app: FastAPI, *, docs_url: str, openapi_url: str) -> None:
    """Serve the docs page at ``docs_url`` (reading ``openapi_url``), its assets, and the shortcuts."""
    assets_url = f"{docs_url}/assets"
    oauth2_redirect_url = f"{docs_url}/oauth2-redirect"
    app.mount(assets_url, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} API",
            swagger_js_url=f"{root}{assets_url}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{assets_url}/swagger-ui.css",
            swagger_favicon_url=f"{root}{assets_url}/favicon.png",
            oauth2_redirect_url=f"{root}{oauth2_redirect_url}",
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get(oauth2_redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def to_docs(request: Request) -> RedirectResponse:
        return RedirectResponse(f"{request.scope.get('root_path', '')}{docs_url}")

    for path in SHORTCUTS:
        app.add_api_route(path, to_docs, methods=["GET"], include_in_schema=False)
