"""The interactive API reference at `/docs`: Swagger UI from files shipped in the package
(`api/static/swagger-ui/`, vendored from npm's swagger-ui-dist), so it works on a machine with
no internet. The page has no inline script (`init.js` starts the UI on `/openapi.json`)."""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_PATH = "/docs/static"
# Swagger UI sets inline styles on its elements; everything it loads comes from this origin.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

_PAGE = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>tidings API reference</title>
  <link rel="stylesheet" href="{STATIC_PATH}/swagger-ui.css">
  <link rel="icon" type="image/png" href="{STATIC_PATH}/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{STATIC_PATH}/swagger-ui-bundle.js"></script>
  <script src="{STATIC_PATH}/init.js"></script>
</body>
</html>
"""


def install_docs(app: FastAPI) -> None:
    folder = resources.files("tidings.api").joinpath("static", "swagger-ui")
    app.mount(STATIC_PATH, StaticFiles(directory=str(folder)), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(_PAGE, headers={"Content-Security-Policy": DOCS_CSP})
