"""The document the binary serves with the shipped settings, judged by linters nobody here wrote,
installed by `.ci/run` at pinned versions: Redocly CLI with its recommended rules (`redocly.yaml`),
no errors; Spectral with the OWASP API Security Top 10 ruleset (`.spectral.yaml`, where each rule
turned off has its reason), no errors. The warnings they find are printed."""

import collections
import json
import subprocess

import pytest

from bank_testkit.processes import ROOT, Api

TOOLS = ROOT / "target" / "tools" / "node" / "node_modules" / ".bin"
REDOCLY = TOOLS / "redocly"
SPECTRAL = TOOLS / "spectral"

@pytest.fixture(scope="module")
def document(tmp_path_factory):
    """`/openapi.json` of the binary run as a newcomer runs it: nothing set, every default."""
    workdir = tmp_path_factory.mktemp("served")
    server = Api.as_newcomer(workdir)
    try:
        path = workdir / "openapi.json"
        path.write_bytes(subprocess.run(["curl", "-sf", f"{server.url}/openapi.json"], check=True,
                                        capture_output=True, timeout=30).stdout)
    finally:
        server.stop()
    return path


def test_the_served_document_passes_redoclys_recommended_rules(document):
    assert REDOCLY.exists(), f"{REDOCLY} is missing: .ci/run installs it (install_redocly in .ci/lib.sh)"
    lint = subprocess.run([REDOCLY, "lint", "--config", ROOT / "redocly.yaml", "--format", "json", document],
                          capture_output=True, text=True, timeout=120)
    problems = json.loads(lint.stdout)["problems"]
    for problem in problems:
        print(problem["severity"], problem["ruleId"], problem["location"][0]["pointer"])
    errors = [problem for problem in problems if problem["severity"] == "error"]
    assert errors == [], json.dumps(errors, indent=2)


def test_the_served_document_passes_spectrals_owasp_rules(document):
    assert SPECTRAL.exists(), f"{SPECTRAL} is missing: .ci/run installs it (install_spectral in .ci/lib.sh)"
    # Spectral finds the rulesets `extends` names in the node_modules beside the ruleset file (else
    # it would fetch them from the network), so the ruleset is read from where the tools are.
    ruleset = TOOLS.parent.parent / ".spectral.yaml"
    ruleset.write_text((ROOT / ".spectral.yaml").read_text())
    lint = subprocess.run([SPECTRAL, "lint", "--ruleset", ruleset, "--format", "json", "--quiet", document],
                          capture_output=True, text=True, timeout=300)
    assert lint.stdout.strip(), lint.stderr
    problems = json.loads(lint.stdout)
    assert not any(problem["code"] == "unrecognized-format" for problem in problems), problems
    warnings = collections.Counter(problem["code"] for problem in problems if problem["severity"] > 0)
    print(f"\nSpectral (OWASP) warnings by rule: {dict(warnings)}")
    errors = [(problem["code"], "/".join(map(str, problem["path"]))) for problem in problems
              if problem["severity"] == 0]
    assert errors == [], json.dumps(errors, indent=2)
