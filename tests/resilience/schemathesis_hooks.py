"""Schemathesis hooks: make generated requests look like a real client's where the API is stricter
than JSON Schema can say, so that what schemathesis reports is a real defect, not a design choice.

- A real client sends a fresh Idempotency-Key with each new request. Reusing one key for another
  body is refused with 422 by design (tests/api covers that rule).
- A webhook endpoint's URL would send the server to resolve and call whatever host was generated;
  every http(s) URL is pointed at a closed port on this machine instead (allowed by the server's
  WEBHOOK_ALLOWED_NETWORKS), so no test traffic leaves it. Other strings are kept: the server
  refuses them before any lookup.
- A transfer (and a hold) needs two different accounts, a rule across two fields that JSON Schema cannot
  state; such bodies, alone or as a batch's item, are refused with 422 (tested in tests/api) and
  are not generated here. The coverage phase does not pass through `filter_body`: there, only a
  422 whose every problem is that rule (`same_account`) is not counted as a failure.
"""

import re
import uuid

import schemathesis


def is_valid_key(key):
    return 1 <= len(key) <= 255 and all("!" <= c <= "~" for c in key)


def two_accounts(transfer):
    return transfer.get("from_acc_id") is None or transfer.get("from_acc_id") != transfer.get("to_acc_id")


@schemathesis.hook
def filter_body(ctx, body):
    if ctx.operation is None or not isinstance(body, dict):
        return True
    if ctx.operation.path in ("/transfers", "/holds"):
        return two_accounts(body)
    if ctx.operation.path == "/batches" and isinstance(body.get("items"), list):
        return all(two_accounts(item) for item in body["items"] if isinstance(item, dict) and item.get("kind") == "transfer")
    return True


LOCAL_URL = "http://127.0.0.1:9/hook"
MAX_URL_CHARS = 2048


def is_web_url(url):
    # As the URL standard reads it: tabs and newlines anywhere, and C0 or spaces around, ignored.
    url = re.sub(r"[\t\n\r]", "", url).strip("".join(map(chr, range(0x21))))
    return url.split(":", 1)[0].lower() in ("http", "https")


@schemathesis.hook
def before_call(context, case, kwargs):
    body = case.body
    if case.path == "/webhooks" and isinstance(body, dict) and isinstance(body.get("url"), str):
        if len(body["url"]) <= MAX_URL_CHARS and is_web_url(body["url"]):
            body["url"] = LOCAL_URL
    # Only keys that would pass validation are replaced: malformed keys must still be refused.
    key = (case.headers or {}).get("Idempotency-Key")
    if key is not None and is_valid_key(key):
        case.headers["Idempotency-Key"] = uuid.uuid4().hex


@schemathesis.hook
def filter_failure(ctx, failure, case, response):
    if response.status_code != 422:
        return True
    try:
        detail = response.json().get("detail")
    except ValueError:
        return True
    same_account = isinstance(detail, list) and detail and all(
        isinstance(problem, dict) and problem.get("type") == "same_account" for problem in detail)
    return not same_account
