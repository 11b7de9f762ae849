"""The docs pages' security headers, in a real browser: Swagger UI and ReDoc work under their
Content-Security-Policy with nothing refused, and a page of another origin cannot frame them
(Swagger UI holds the login form: framed, it could be clickjacked)."""

import re

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from bank_testkit.processes import Api, StaticSite

FRAMING_PAGE = """<!doctype html>
<title>another site</title>
<iframe id="docs" src="{api}/docs/" width="800" height="600"></iframe>
"""


@pytest.fixture()
def server(tmp_path):
    server = Api.for_tests(f"sqlite://{tmp_path}/bank.db?mode=rwc", tmp_path / "bank-api.log")
    yield server.url
    server.stop(timeout=30)


def console(browser):
    return [entry["message"] for entry in browser.get_log("browser")]


def test_swagger_ui_and_redoc_run_under_their_policy_with_nothing_refused(server, browser):
    wait = WebDriverWait(browser, 30)
    browser.get(f"{server}/docs/")
    wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, ".opblock")) > 10)
    browser.get(f"{server}/redoc")
    wait.until(lambda b: "Place a hold" in b.find_element(By.TAG_NAME, "body").text)
    # The policy is meant to refuse what is not this server's (ReDoc's badge links an image on
    # cdn.redoc.ly: the docs load nothing from the internet); nothing of this server's may be.
    refused = [message for message in console(browser) if "Content Security Policy" in message]
    ours = [message for message in refused if re.search(rf"'{re.escape(server)}[^']*' violates", message)
            or "inline" in message or "eval" in message]
    assert ours == [], refused


def test_a_page_of_another_origin_cannot_frame_the_docs(server, browser, tmp_path):
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "index.html").write_text(FRAMING_PAGE.format(api=server))
    site = StaticSite(pages)
    seen = []

    def refusal(b):
        seen.extend(console(b))  # reading the console empties it
        return [message for message in seen if "frame-ancestors 'none'" in message]

    try:
        browser.get(f"{site.url}/index.html")
        WebDriverWait(browser, 20).until(refusal)
        # What the frame holds is the browser's error page, not Swagger UI.
        browser.switch_to.frame("docs")
        shown = browser.execute_script("return document.location.href")
    finally:
        site.stop()
    assert shown.startswith("chrome-error://"), shown
