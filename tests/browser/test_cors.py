"""CORS in a real browser: a page served from a second local origin calls the API with `fetch`,
logging in for a bearer token and reading a customer's accounts with it. From the origin that
`CORS_ALLOWED_ORIGINS` lists it works; from another origin the browser blocks it."""

import os

import pytest
from selenium.webdriver.support.ui import WebDriverWait

from bank_testkit.http import request
from bank_testkit.processes import Api, StaticSite

PAGE = """<!doctype html>
<title>a front end on another origin</title>
<pre id="result">running</pre>
<script>
const api = new URLSearchParams(location.search).get("api");
(async () => {
  try {
    const login = await fetch(`${api}/token`, {
      method: "POST",
      headers: {"Content-Type": "application/x-www-form-urlencoded"},
      body: "username=ada&password=" + encodeURIComponent("correct horse battery"),
    });
    const {access_token} = await login.json();
    const accounts = await fetch(`${api}/accounts`, {
      headers: {"Authorization": `Bearer ${access_token}`, "X-Request-Id": "from-the-browser"},
    });
    const body = await accounts.json();
    const requestId = accounts.headers.get("X-Request-Id");
    document.getElementById("result").textContent = `ok ${accounts.status} ${body.length} ${requestId}`;
  } catch (error) {
    document.getElementById("result").textContent = `blocked ${error.name}`;
  }
})();
</script>
"""


@pytest.fixture()
def site(tmp_path):
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "index.html").write_text(PAGE)
    allowed, other = StaticSite(pages), StaticSite(pages)
    env = dict(os.environ, HOST="127.0.0.1", DATABASE_URL=f"sqlite://{tmp_path / 'bank.db'}?mode=rwc",
               CORS_ALLOWED_ORIGINS=allowed.url)
    server = Api(env, tmp_path / "bank-api.log", cwd=tmp_path)
    api = server.url
    assert request("POST", f"{api}/users", {"username": "ada", "password": "correct horse battery"})[0] == 201
    yield api, allowed, other
    for origin in (allowed, other):
        origin.stop()
    server.stop(timeout=30)


def outcome(browser, origin, api):
    browser.get(f"{origin.url}/index.html?api={api}")
    result = browser.find_element("id", "result")
    WebDriverWait(browser, 20).until(lambda _: result.text != "running")
    return result.text


def test_a_page_of_the_allowed_origin_calls_the_api_and_another_origins_is_blocked(browser, site):
    api, allowed, other = site
    assert outcome(browser, allowed, api) == "ok 200 0 from-the-browser"
    assert outcome(browser, other, api) == "blocked TypeError"
