"""`make package` works from a fresh clone with no AWS credentials, and cfn-lint finds no errors."""

from __future__ import annotations

import zipfile

import pytest


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_make_package_writes_template_and_zip_without_credentials(packaged, stage):
    # GIVEN a fresh clone and no AWS credentials WHEN `make package STAGE=...` runs
    out = packaged(stage)
    # THEN build/ holds the SAM template and a zip with the app and its dependencies
    template = out["template"]
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    with zipfile.ZipFile(out["dir"] / "deployment.zip") as bundle:
        names = set(bundle.namelist())
    assert {"app.py", "chalicelib/__init__.py"} <= names
    assert any(n.startswith("pynamodb/") for n in names), "requirements.txt was not bundled"
    tags = {fn["Properties"]["Tags"]["aws-chalice"] for fn in _functions(template).values()}
    assert tags == {f"version=1.34.0:stage={stage}:app=solana-exec"}


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_cfn_lint_reports_no_errors(packaged, stage):
    pytest.importorskip("samtranslator", reason="cfn-lint needs aws-sam-translator to expand the SAM transform")
    from cfnlint.api import ManualArgs, lint_file

    # GIVEN the packaged template WHEN cfn-lint checks it (SAM transform expanded)
    matches = lint_file(packaged(stage)["dir"] / "sam.json", config=ManualArgs(regions=["us-east-1"]))
    # THEN there is no error (E*) and no warning (W*)
    problems = [f"{m.rule.id} {m.message} ({m.linenumber})" for m in matches if m.rule.id[0] in "EW"]
    assert problems == []


def _functions(template):
    return {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
