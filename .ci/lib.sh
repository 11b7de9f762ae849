# Helpers for .ci/run. Each one is idempotent: it does nothing when its job is already done.

VENV=${VENV:-$PWD/target/ci-venv}

# Each step's heading shows the minutes and seconds since the run began, so a slow step shows.
step() { printf '\n==> [%d:%02d] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

# Waits for a job started with `&`; if it failed, shows its log (the second argument) and fails.
finish() {
  wait "$1" || { cat "$2"; return 1; }
}

# Installs the Debian packages that are missing; `apt-get update` only when something is.
apt_install() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Postgres on 127.0.0.1:5432 with trust auth for local connections and a database `test`.
start_postgres() {
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    local hba=/etc/postgresql/$version/main/pg_hba.conf
    grep -q "bank-api ci" "$hba" || sed -i '1i host all all 127.0.0.1/32 trust # bank-api ci' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
  psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 ||
    psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" >/dev/null
}

# Each test makes its own database; remove those left by earlier runs.
drop_test_databases() {
  rm -f "${TMPDIR:-/tmp}"/bank-test-*.db*
  psql -h 127.0.0.1 -U postgres -d test -tAc \
    "SELECT datname FROM pg_database WHERE datname LIKE 'bank\_test\_%' OR datname LIKE 'bank\_e2e\_%'" |
    while read -r name; do
      psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)"
    done
}

# Fails if the Rust tests left a database behind: a SQLite file in the temporary directory or a
# Postgres database of theirs (tests/common removes each as the test process exits).
no_test_databases_left() {
  local files databases
  files=$(find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'bank-test-*.db*' | wc -l)
  databases=$(psql -h 127.0.0.1 -U postgres -d test -tAc \
    "SELECT count(*) FROM pg_database WHERE datname LIKE 'bank\_test\_%'")
  echo "left behind: $files SQLite files, $databases Postgres databases"
  [ "$files" -eq 0 ] && [ "$databases" -eq 0 ]
}

# A virtualenv in target/ with the given requirements files installed.
python_venv() {
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  for requirements in "$@"; do
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$requirements"
  done
}

# Redocly CLI, the OpenAPI linter tests/cli/test_openapi_lint.py runs, from the npm registry at a
# pinned version, into target/tools/node.
REDOCLY_VERSION=2.77.0
install_redocly() {
  local prefix=$PWD/target/tools/node
  if [ "$("$prefix/node_modules/.bin/redocly" --version 2>/dev/null)" != "$REDOCLY_VERSION" ]; then
    command -v npm >/dev/null || apt_install npm
    npm install --silent --no-audit --no-fund --prefix "$prefix" "@redocly/cli@$REDOCLY_VERSION"
  fi
}

# Spectral and its OWASP API Security Top 10 ruleset, pinned, beside Redocly.
SPECTRAL_VERSION=6.16.3
SPECTRAL_OWASP_VERSION=2.0.1
install_spectral() {
  local prefix=$PWD/target/tools/node
  if [ "$("$prefix/node_modules/.bin/spectral" --version 2>/dev/null)" != "$SPECTRAL_VERSION" ] ||
    ! grep -qs "\"version\": \"$SPECTRAL_OWASP_VERSION\"" \
      "$prefix/node_modules/@stoplight/spectral-owasp-ruleset/package.json"; then
    command -v npm >/dev/null || apt_install npm
    npm install --silent --no-audit --no-fund --prefix "$prefix" "@stoplight/spectral-cli@$SPECTRAL_VERSION" \
      "@stoplight/spectral-owasp-ruleset@$SPECTRAL_OWASP_VERSION"
  fi
}

# The benchmark's tools from crates.io, at pinned versions, into target/tools so a clean clone
# builds its own: oha, its open-loop load generator, and inferno, which folds perf's samples of
# Postgres and draws them (the crate the server draws its own flame graphs with).
OHA_VERSION=1.16.0
INFERNO_VERSION=0.12.8
install_bench_tools() {
  local root=$PWD/target/tools
  local installed
  installed=$(cargo install --list --root "$root" 2>/dev/null)
  if ! grep -qx "oha v$OHA_VERSION:" <<<"$installed"; then
    cargo install --quiet --locked --root "$root" --version "$OHA_VERSION" oha
  fi
  if ! grep -qx "inferno v$INFERNO_VERSION:" <<<"$installed"; then
    cargo install --quiet --locked --root "$root" --version "$INFERNO_VERSION" inferno
  fi
  export PATH="$root/bin:$PATH"
}
