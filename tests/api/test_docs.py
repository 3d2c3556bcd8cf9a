"""The API docs page is whole without the internet: every file it needs comes from the API itself."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.api.support import ApiServer, make_settings, running_api_server

DOCS = "/api/v1/docs"
# Any URL-looking string in the page: absolute, protocol-relative, or a path on this server.
_QUOTED_PATH = re.compile(r"""['"](/[^'"\s]*)['"]""")
_ANY_HOST = re.compile(r"(?:https?:)?//[\w.-]+", re.IGNORECASE)


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_script = tag == "script"
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    folder: Path = tmp_path_factory.mktemp("api-docs")
    with running_api_server(make_settings(f"sqlite:///{folder / 'trinity.db'}", state_dir=folder)) as api:
        yield api


def test_the_docs_page_and_everything_it_references_come_from_the_api(server: ApiServer) -> None:
    page = httpx.get(server.url + DOCS, timeout=30)
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    parsed = _References()
    parsed.feed(page.text)
    inline = [match for script in parsed.scripts for match in _QUOTED_PATH.findall(script)]
    references = [*parsed.urls, *inline]

    assert _ANY_HOST.findall(page.text) == []  # no other host, not even a protocol-relative one
    assert len(parsed.urls) >= 3  # the style sheet, the icon, the script
    assert f"{DOCS}/assets/swagger-ui-bundle.js" in references
    assert "/api/v1/openapi.json" in references
    for reference in references:
        url = urljoin(server.url + DOCS, reference)
        assert urlsplit(url).netloc == urlsplit(server.url).netloc, reference
        response = httpx.get(url, timeout=30)
        assert response.status_code == 200, reference
        assert response.content, reference


def test_swagger_ui_is_a_version_that_reads_openapi_3_1(server: ApiServer) -> None:
    spec = httpx.get(server.url + "/api/v1/openapi.json", timeout=30).json()
    bundle = httpx.get(f"{server.url}{DOCS}/assets/swagger-ui-bundle.js", timeout=30).text

    assert spec["openapi"].startswith("3.1")
    assert "SwaggerUIBundle" in bundle
    assert re.search(r'"5\.\d+\.\d+"', bundle), "swagger-ui 5 (OpenAPI 3.1) expected"


@pytest.mark.parametrize("path", ["/", "/docs"])
def test_the_root_and_docs_lead_to_the_docs_page(server: ApiServer, path: str) -> None:
    response = httpx.get(server.url + path, timeout=30, follow_redirects=True)

    assert response.status_code == 200
    assert str(response.url) == server.url + DOCS
    assert "swagger-ui" in response.text
