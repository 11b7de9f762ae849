"""Asking a real Prometheus."""

import json
import urllib.parse
import urllib.request


def instant_query(prometheus, expr):
    """The result vector of `expr` evaluated now."""
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]["result"]
