"""The README's "Start" section, followed as a newcomer would: the binary started with no
configuration in an empty directory, and every URL the section names opened. Swagger UI and ReDoc
must show every operation in a real (headless) Chromium, with no internet; the other URLs must answer
200. The URLs are read from the README itself, so the two cannot drift apart. The screenshots it
takes are the ones the README shows (docs/images/)."""

import json
import os
import re
import socket
import urllib.request

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from bank_testkit.processes import BANK_API, ROOT, Process, free_port

IMAGES = ROOT / "docs" / "images"
README_PORT = 8888


def start_section_urls():
    readme = (ROOT / "README.md").read_text()
    section = re.search(r"^## Start\n(.*?)^## ", readme, re.S | re.M).group(1)
    return sorted(set(re.findall(r"http://127\.0\.0\.1:8888/[^>)\s`]*", section)))


@pytest.fixture()
def newcomer(tmp_path):
    """bank-api as `cargo run --release` starts it: nothing set, an empty working directory. Only
    the port moves when 8888 is taken on this machine."""
    port = README_PORT
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", README_PORT)) == 0:
            port = free_port()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    if port != README_PORT:
        env["PORT"] = str(port)
    workdir = tmp_path / "empty"
    workdir.mkdir()
    base = f"http://127.0.0.1:{port}"
    # Not `Api`, which always sets PORT: here the default port is what is tried.
    server = Process([BANK_API], tmp_path / "bank-api.log", env=env, cwd=workdir, ready_url=f"{base}/health", seconds=30)
    yield base, workdir
    server.stop(timeout=30)


def operation_summaries(base):
    with urllib.request.urlopen(f"{base}/openapi.json") as response:
        document = json.load(response)
    return [operation["summary"] for item in document["paths"].values() for operation in item.values()]


def test_every_url_of_the_readme_start_section_works(newcomer, browser):
    base, workdir = newcomer
    urls = start_section_urls()
    assert {"/docs", "/redoc", "/openapi.json", "/metrics", "/health", "/ready"} <= {
        url.removeprefix("http://127.0.0.1:8888") for url in urls
    }, urls
    summaries = operation_summaries(base)
    assert len(summaries) >= 12, summaries
    wait = WebDriverWait(browser, 30)

    for url in urls:
        local = url.replace("http://127.0.0.1:8888", base)
        with urllib.request.urlopen(local, timeout=10) as response:  # follows /docs -> /docs/
            assert response.status == 200, url
        if url.endswith("/docs"):
            browser.get(local)
            wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, ".opblock")) == len(summaries))
            text = browser.find_element(By.TAG_NAME, "body").text
            assert all(summary in text for summary in summaries), "Swagger UI shows every operation"
            browser.save_screenshot(str(IMAGES / "swagger-ui.png"))
        elif url.endswith("/redoc"):
            browser.get(local)
            wait.until(lambda b: all(s in b.find_element(By.TAG_NAME, "body").text for s in summaries))
            browser.save_screenshot(str(IMAGES / "redoc.png"))
    assert (workdir / "bank.db").exists(), "the embedded default: a SQLite file in the working directory"
