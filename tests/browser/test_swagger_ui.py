"""A person's first visit: open /docs in a real (headless) Chromium, try out "Open an account",
execute it, and see the 201 the API answered on the page."""

import os
import subprocess
import urllib.request

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

from support import BANK_API, ROOT, free_port, wait_until_ok



@pytest.fixture()
def server(tmp_path):
    port = free_port()
    env = dict(
        os.environ,
        PORT=str(port),
        HOST="127.0.0.1",
        DATABASE_URL=f"sqlite://{tmp_path / 'bank.db'}?mode=rwc",
    )
    process = subprocess.Popen([BANK_API], env=env, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    wait_until_ok(f"{base}/health", process, seconds=30)
    yield base
    process.terminate()
    process.wait(timeout=30)


def test_try_it_out_opens_an_account(server, browser):
    wait = WebDriverWait(browser, 30)
    browser.get(f"{server}/docs/")

    operation = wait.until(
        ready.element_to_be_clickable((By.CSS_SELECTOR, "#operations-accounts-create_account .opblock-summary"))
    )
    operation.click()
    block = browser.find_element(By.ID, "operations-accounts-create_account")
    wait.until(lambda _: block.find_element(By.CSS_SELECTOR, "button.try-out__btn")).click()
    body = wait.until(lambda _: block.find_element(By.CSS_SELECTOR, "textarea.body-param__text"))
    assert '"first_name"' in body.get_attribute("value"), "the example body is filled in"
    block.find_element(By.CSS_SELECTOR, "button.execute").click()

    status = wait.until(
        lambda _: block.find_element(By.CSS_SELECTOR, ".live-responses-table .response .response-col_status")
    )
    wait.until(lambda _: status.text.strip() != "")
    browser.save_screenshot(str(ROOT / "target" / "swagger-try-it-out.png"))
    assert status.text.strip().startswith("201"), status.text
    live = block.find_element(By.CSS_SELECTOR, ".live-responses-table")
    wait.until(lambda _: '"balance": 0' in live.text)

    with urllib.request.urlopen(f"{server}/accounts") as listed:
        assert b'"first_name":"Ada"' in listed.read(), "the account really exists"
