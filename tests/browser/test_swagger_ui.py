"""A person's first visit, with access control on: open /docs in a real (headless) Chromium, sign
up with "Try it out", log in through the Authorize dialog, try out "Open an account", execute it,
and see the 201 the API answered on the page."""

import json
import os
import urllib.parse
import urllib.request

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

from bank_testkit.http import bearer
from bank_testkit.processes import ROOT, Api


@pytest.fixture()
def server(tmp_path):
    env = dict(os.environ, HOST="127.0.0.1", DATABASE_URL=f"sqlite://{tmp_path / 'bank.db'}?mode=rwc")
    server = Api(env, tmp_path / "bank-api.log", cwd=tmp_path)
    yield server.url
    server.stop(timeout=30)


def try_it_out(browser, wait, operation_id):
    """Opens an operation, presses "Try it out" and "Execute"; returns the answered status."""
    summary = wait.until(
        ready.element_to_be_clickable((By.CSS_SELECTOR, f"#{operation_id} .opblock-summary"))
    )
    browser.execute_script("arguments[0].scrollIntoView()", summary)
    summary.click()
    block = browser.find_element(By.ID, operation_id)
    wait.until(lambda _: block.find_element(By.CSS_SELECTOR, "button.try-out__btn")).click()
    body = wait.until(lambda _: block.find_element(By.CSS_SELECTOR, "textarea.body-param__text"))
    assert body.get_attribute("value").startswith("{"), "the example body is filled in"
    block.find_element(By.CSS_SELECTOR, "button.execute").click()
    status = wait.until(
        lambda _: block.find_element(By.CSS_SELECTOR, ".live-responses-table .response .response-col_status")
    )
    wait.until(lambda _: status.text.strip() != "")
    return block, status.text.strip()


def test_sign_up_authorize_and_open_an_account(server, browser):
    wait = WebDriverWait(browser, 30)
    browser.get(f"{server}/docs/")

    _, signed_up = try_it_out(browser, wait, "operations-users-create_user")
    assert signed_up.startswith("201"), signed_up

    browser.find_element(By.CSS_SELECTOR, ".auth-wrapper button.authorize").click()
    dialog = wait.until(lambda _: browser.find_element(By.CSS_SELECTOR, ".modal-ux"))
    dialog.find_element(By.ID, "oauth_username").send_keys("ada")
    dialog.find_element(By.ID, "oauth_password").send_keys("correct horse battery")
    dialog.find_element(By.CSS_SELECTOR, "button.modal-btn.auth.authorize").click()
    wait.until(lambda _: "Logout" in dialog.text)
    dialog.find_element(By.CSS_SELECTOR, "button.btn-done").click()

    block, opened = try_it_out(browser, wait, "operations-accounts-create_account")
    browser.save_screenshot(str(ROOT / "target" / "swagger-try-it-out.png"))
    assert opened.startswith("201"), opened
    live = block.find_element(By.CSS_SELECTOR, ".live-responses-table")
    wait.until(lambda _: '"balance": 0' in live.text)

    form = urllib.parse.urlencode({"username": "ada", "password": "correct horse battery"}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{server}/token", data=form)) as answer:
        token = json.loads(answer.read())["access_token"]
    listed = urllib.request.Request(f"{server}/accounts", headers=bearer(token))
    with urllib.request.urlopen(listed) as answer:
        assert json.loads(answer.read())[0]["first_name"] == "Ada", "the account is really ada's"
