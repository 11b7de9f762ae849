"""An account's ledger as a client reads it: every row, following the cursor page by page."""

from bank_testkit.http import bearer, request

PAGE = 1000


def ledger_rows(base_url, account, token):
    """Every ledger row of `account`, oldest first."""
    found, after = [], 0
    while True:
        status, page = request("GET", f"{base_url}/accounts/{account}/transactions?after_id={after}&limit={PAGE}",
                               headers=bearer(token))
        assert status == 200, page
        found += page
        if len(page) < PAGE:
            return found
        after = page[-1]["id"]
