"""HTTP as the suites speak it: answers as (status, parsed body), never an exception for an HTTP
error; bearer headers; logging in and signing up."""

import json
import urllib.error
import urllib.parse
import urllib.request


def request(method, url, body=None, headers=None, timeout=10):
    """(status, parsed JSON or text) without raising on HTTP errors."""
    data = json.dumps(body).encode() if body is not None else None
    all_headers = {"Content-Type": "application/json"} if body is not None else {}
    all_headers.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def get(url, timeout=2):
    """(status, parsed JSON or None); status 0 when nothing answered (a server that is down)."""
    try:
        status, body = request("GET", url, timeout=timeout)
    except (OSError, ValueError):
        return 0, None
    return status, body if not isinstance(body, str) else None


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def try_log_in(base_url, username, password, forwarded_for=None):
    """POST /token as the OAuth2 form: (status, parsed body, headers), whatever the answer."""
    data = urllib.parse.urlencode({"username": username, "password": password}).encode()
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    req = urllib.request.Request(f"{base_url}/token", data=data, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as answer:
            return answer.status, json.loads(answer.read()), answer.headers
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), error.headers


def log_in(base_url, username, password):
    """A bearer token for this user."""
    status, body, _ = try_log_in(base_url, username, password)
    assert status == 200, (status, body)
    return body["access_token"]


def sign_up(base_url, username, password=None):
    """Signs `username` up as a customer (password: `<username> password`) and returns a token."""
    password = password or f"{username} password"
    status, body = request("POST", f"{base_url}/users", {"username": username, "password": password})
    assert status == 201, body
    return log_in(base_url, username, password)
