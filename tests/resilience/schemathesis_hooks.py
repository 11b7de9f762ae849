"""Schemathesis hooks: make generated requests look like a real client's where the API is stricter
than JSON Schema can say, so that what schemathesis reports is a real defect, not a design choice.

- A real client sends a fresh Idempotency-Key with each new request. Reusing one key for another
  body is refused with 422 by design (tests/api covers that rule).
- A transfer needs two different accounts, a rule across two fields that JSON Schema cannot
  state; such bodies are refused with 422 (tested in tests/api) and are not generated here.
"""

import uuid

import schemathesis


def is_valid_key(key):
    return 1 <= len(key) <= 255 and all("!" <= c <= "~" for c in key)


@schemathesis.hook
def filter_body(ctx, body):
    if ctx.operation is None or ctx.operation.path != "/transfers" or not isinstance(body, dict):
        return True
    return body.get("from_acc_id") is None or body.get("from_acc_id") != body.get("to_acc_id")


@schemathesis.hook
def before_call(context, case, kwargs):
    # Only keys that would pass validation are replaced: malformed keys must still be refused.
    key = (case.headers or {}).get("Idempotency-Key")
    if key is not None and is_valid_key(key):
        case.headers["Idempotency-Key"] = uuid.uuid4().hex
