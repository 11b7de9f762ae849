"""Each access-control setting the README documents, read from the environment by the real binary
and checked by its effect, so a misspelt or ignored variable fails here; the start-up rules for
the token key, the operator and CORS; the warning about a generated key; the shutdown grace."""

import base64
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from bank_testkit.http import bearer, request, try_log_in
from bank_testkit.processes import BANK_API, JWT_SECRET, OPERATOR, Api, free_port


class Binary(Api):
    """bank-api in an empty directory of its own (so on a fresh SQLite file), with only the given
    variables set; users sign up with one password."""

    PASSWORD = "a long enough password"

    def __init__(self, workdir, **settings):
        workdir.mkdir()
        env = {"PATH": os.environ["PATH"], "HOME": str(workdir)}
        env.update({key: str(value) for key, value in settings.items()})
        super().__init__(env, workdir / "bank-api.log", cwd=workdir)

    def sign_up(self, username, password=PASSWORD, headers=None):
        return request("POST", f"{self.url}/users", {"username": username, "password": password}, headers=headers)

    def try_log_in(self, username, password=PASSWORD):
        return try_log_in(self.url, username, password)


@pytest.fixture()
def binaries(tmp_path):
    started = []

    def start(**settings):
        binary = Binary(tmp_path / f"binary{len(started)}", **settings)
        started.append(binary)
        return binary

    yield start
    for binary in started:
        binary.stop()


def test_auth_required_false_lets_every_caller_in_as_an_operator(binaries):
    assert request("GET", f"{binaries().url}/accounts")[0] == 401, "on by default"
    status, accounts = request("GET", f"{binaries(AUTH_REQUIRED='false').url}/accounts")
    assert (status, accounts) == (200, [])


def test_signup_enabled_false_leaves_user_creation_to_operators(binaries):
    assert binaries().sign_up("ada")[0] == 201, "open by default"
    closed = binaries(SIGNUP_ENABLED="false", JWT_SECRET=JWT_SECRET, OPERATOR_USERNAME=OPERATOR[0],
                      OPERATOR_PASSWORD=OPERATOR[1])
    assert closed.sign_up("ada") == (403, {"detail": "Sign-up is disabled"})
    status, token, _ = closed.try_log_in(*OPERATOR)
    assert status == 200
    assert closed.sign_up("ada", headers=bearer(token["access_token"]))[0] == 201


def test_token_ttl_secs_sets_the_tokens_real_lifetime(binaries):
    for ttl, settings in [(900, {}), (120, {"TOKEN_TTL_SECS": "120"})]:
        binary = binaries(**settings)
        binary.sign_up("ada")
        status, token, _ = binary.try_log_in("ada")
        assert status == 200 and token["expires_in"] == ttl
        payload = token["access_token"].split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        assert claims["exp"] - claims["iat"] == ttl, claims


def test_login_throttle_secs_is_how_long_failures_count(binaries):
    binary = binaries(LOGIN_THROTTLE_SECS="3")
    binary.sign_up("ada")
    for _ in range(5):
        assert binary.try_log_in("ada", "a wrong password")[0] == 401
    status, body, headers = binary.try_log_in("ada")
    assert status == 429, body
    assert 1 <= int(headers["Retry-After"]) <= 3, headers
    time.sleep(3.5)
    assert binary.try_log_in("ada")[0] == 200, "the window of 3 s has passed"


def test_a_generated_key_is_warned_about_and_a_given_one_is_not(binaries):
    warning = "JWT_SECRET is not set: tokens are signed with a key made at start"
    generated = binaries()
    given = binaries(JWT_SECRET=JWT_SECRET)
    assert warning in generated.logged()
    assert warning not in given.logged()
    # The generated key is this process's own: another process refuses its tokens.
    generated.sign_up("ada")
    token = generated.try_log_in("ada")[1]["access_token"]
    assert request("GET", f"{generated.url}/accounts", headers=bearer(token))[0] == 200
    assert request("GET", f"{binaries().url}/accounts", headers=bearer(token))[0] == 401


@pytest.mark.parametrize("settings, variable, expected", [
    ({"JWT_SECRET": "thirty-one characters, one shy"}, "JWT_SECRET", "at least 32 characters"),
    ({"OPERATOR_USERNAME": "root"}, "OPERATOR_PASSWORD", "set with OPERATOR_USERNAME"),
    ({"OPERATOR_PASSWORD": "a password without a name"}, "OPERATOR_PASSWORD", "set with OPERATOR_USERNAME"),
    ({"OPERATOR_USERNAME": "root", "OPERATOR_PASSWORD": "short"}, "OPERATOR_PASSWORD", "8 to 128 characters"),
    ({"CORS_ALLOWED_ORIGINS": "*"}, "CORS_ALLOWED_ORIGINS", "`*` is refused"),
])
def test_start_up_refuses_a_bad_key_a_half_operator_and_a_wildcard_origin(tmp_path, settings, variable, expected):
    result = subprocess.run([BANK_API], cwd=tmp_path, capture_output=True, text=True, timeout=30,
                            env={"PATH": os.environ["PATH"], "PORT": str(free_port()), **settings})
    assert result.returncode == 2, result
    line = result.stderr.strip()
    assert line.startswith(f"bank-api: invalid {variable}="), line
    assert expected in line, line
    for value in settings.values():
        if variable != "CORS_ALLOWED_ORIGINS" and len(value) > 4:
            assert value not in line, "a secret is never shown"


def test_sigterm_gives_a_request_in_flight_30_seconds_then_stops(binaries):
    """The grace period the README promises: a request still running 30 s after SIGTERM is cut
    off then, not waited for; the process exits 0."""
    binary = binaries(CLIENT_TIMEOUT_SECS="120")
    with socket.create_connection(("127.0.0.1", binary.port), timeout=120) as connection:
        connection.sendall(b"POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 1000\r\n\r\n{")
        time.sleep(0.5)
        binary.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        exit_code = binary.process.wait(timeout=90)
        waited = time.monotonic() - signalled
    assert exit_code == 0
    # Measured loosely (this is a grace period, not a benchmark): it waited for the request, and
    # not for the client's 120 s.
    assert 25 <= waited <= 60, f"exited {waited:.1f} s after SIGTERM"


def test_rate_limit_per_second_is_on_by_default_and_set_by_the_variable(binaries):
    """The shipped limit is 100 a second per client; the variable sets it. Requests are sent back
    to back from one address without a token, faster than either limit refills."""
    for settings, per_second in (({}, 100), ({"RATE_LIMIT_PER_SECOND": "5"}, 5)):
        url = f"{binaries(**settings).url}/accounts"
        started, answers = time.monotonic(), []
        for _ in range(per_second * 3):
            try:
                with urllib.request.urlopen(url, timeout=10) as answer:
                    answers.append((answer.status, answer.headers))
            except urllib.error.HTTPError as error:
                answers.append((error.code, error.headers))
        elapsed = time.monotonic() - started
        statuses = [status for status, _ in answers]
        assert statuses[0] == 401, "the first is heard (and refused for its missing token)"
        assert statuses.count(401) <= per_second + elapsed * per_second + 1, (elapsed, statuses)
        assert 429 in statuses, (settings, elapsed)
        status, headers = answers[statuses.index(429)]
        assert headers["RateLimit-Policy"] == f'"per-client";q={per_second};w=1'
        assert headers["RateLimit"] == f'"per-client";r=0;t={headers["Retry-After"]}'
        assert int(headers["Retry-After"]) >= 1
