"""The document the binary serves, judged by a linter nobody here wrote: Redocly CLI with its
recommended rules (`redocly.yaml`), installed by `.ci/run` at a pinned version. No errors; the
warnings it finds are printed."""

import json
import subprocess

from bank_testkit.processes import ROOT, Api

REDOCLY = ROOT / "target" / "tools" / "node" / "node_modules" / ".bin" / "redocly"


def test_the_served_document_passes_redoclys_recommended_rules(tmp_path):
    assert REDOCLY.exists(), f"{REDOCLY} is missing: .ci/run installs it (install_redocly in .ci/lib.sh)"
    server = Api.for_tests(f"sqlite://{tmp_path}/bank.db?mode=rwc", tmp_path / "bank-api.log")
    try:
        document = tmp_path / "openapi.json"
        document.write_bytes(subprocess.run(["curl", "-sf", f"{server.url}/openapi.json"], check=True,
                                            capture_output=True, timeout=30).stdout)
        lint = subprocess.run([REDOCLY, "lint", "--config", ROOT / "redocly.yaml", "--format", "json", document],
                              capture_output=True, text=True, timeout=120)
    finally:
        server.stop()
    problems = json.loads(lint.stdout)["problems"]
    for problem in problems:
        print(problem["severity"], problem["ruleId"], problem["location"][0]["pointer"])
    errors = [problem for problem in problems if problem["severity"] == "error"]
    assert errors == [], json.dumps(errors, indent=2)
