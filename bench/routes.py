"""The requests the benchmark sends: each route as a wrk script (the measured load) and as the
same request in Python (the short burst whose statements pgbench replays), on random accounts."""

from dataclasses import dataclass

ACCOUNTS = 1000


@dataclass
class Route:
    name: str
    lua: str  # a wrk script: request() returns the next request
    method: str = "GET"
    # (random.Random) -> (path, JSON body or None): the same request, for the statement capture
    sample: object = None


def _get(path_lua, path_python):
    return f'request = function() return wrk.format("GET", {path_lua}) end', lambda rng: (path_python(rng), None)


def _post(path, body_lua, body_python):
    lua = ('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
           f'request = function() return wrk.format(nil, "{path}", nil, {body_lua}) end')
    return lua, lambda rng: (path, body_python(rng))


def account(rng):
    return rng.randint(1, ACCOUNTS)


def sender(rng):
    return rng.randint(1, ACCOUNTS // 2)


def receiver(rng):
    return rng.randint(ACCOUNTS // 2 + 1, ACCOUNTS)


RANDOM_ACCOUNT = f"math.random(1, {ACCOUNTS})"
lua, sample = _get(f'"/accounts/" .. {RANDOM_ACCOUNT}', lambda rng: f"/accounts/{account(rng)}")
ACCOUNT = Route("GET /accounts/{id}", lua, sample=sample)
lua, sample = _get(f'"/accounts/" .. {RANDOM_ACCOUNT} .. "/balance"', lambda rng: f"/accounts/{account(rng)}/balance")
BALANCE = Route("GET /accounts/{id}/balance", lua, sample=sample)
lua, sample = _post("/transactions", f"'{{\"acc_id\": ' .. {RANDOM_ACCOUNT} .. ', \"credit\": 1}}'",
                    lambda rng: {"acc_id": account(rng), "credit": 1})
POSTING = Route("POST /transactions", lua, "POST", sample)
lua, sample = _post("/transfers", f"'{{\"from_acc_id\": ' .. math.random(1, {ACCOUNTS // 2}) .. ', \"to_acc_id\": ' "
                    f".. math.random({ACCOUNTS // 2 + 1}, {ACCOUNTS}) .. ', \"amount\": 1}}'",
                    lambda rng: {"from_acc_id": sender(rng), "to_acc_id": receiver(rng), "amount": 1})
TRANSFER = Route("POST /transfers", lua, "POST", sample)
METRICS = Route("GET /metrics", "")

# A payroll-like batch: this many postings per request, on random accounts.
BATCH_ITEMS = 100
_item = "'{\"kind\": \"posting\", \"acc_id\": ' .. math.random(1, " + str(ACCOUNTS) + ") .. ', \"credit\": 1}'"
lua, sample = _post("/batches",
                    "'{\"items\": [' .. table.concat((function() local t = {} for i = 1, " + str(BATCH_ITEMS)
                    + " do t[i] = " + _item + " end return t end)(), ', ') .. ']}'",
                    lambda rng: {"items": [{"kind": "posting", "acc_id": account(rng), "credit": 1}
                                           for _ in range(BATCH_ITEMS)]})
BATCH = Route(f"POST /batches ({BATCH_ITEMS} postings)", lua, "POST", sample)

# Hot accounts: every write on the same two accounts, the contention a payroll account sees.
lua, sample = _post("/transactions", "'{\"acc_id\": ' .. math.random(1, 2) .. ', \"credit\": 1}'",
                    lambda rng: {"acc_id": rng.randint(1, 2), "credit": 1})
HOT_POSTING = Route("POST /transactions (2 hot accounts)", lua, "POST", sample)
lua, sample = _post("/transfers", "'{\"from_acc_id\": 1, \"to_acc_id\": 2, \"amount\": 1}'",
                    lambda rng: {"from_acc_id": 1, "to_acc_id": 2, "amount": 1})
HOT_TRANSFER = Route("POST /transfers (2 hot accounts)", lua, "POST", sample)

# The Python original's routes, as its clients call them (a trailing slash on collections).
lua, _ = _post("/transactions/", f"'{{\"acc_id\": ' .. {RANDOM_ACCOUNT} .. ', \"credit\": 1, \"debit\": 0}}'", dict)
ORIGINAL_POSTING = Route("POST /transactions/", lua, "POST")


def page(name, long_account, query):
    """A page of the long-history account's ledger."""
    path = f"/accounts/{long_account}/transactions?{query}"
    return Route(name, f'request = function() return wrk.format("GET", "{path}") end', sample=lambda rng: (path, None))
