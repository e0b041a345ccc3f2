"""Print template.yaml as CloudFormation gets it: the SAM transform, offline, as JSON.

``python infra/sam_transform.py template.yaml`` (run by the SAM CLI's interpreter, ``.venv-sam``,
which has SAM's own translator, ``aws-sam-translator``) writes the transformed template to stdout:
the roles, permissions, aliases, API and stage SAM generates are there as plain resources, so
``make checkov`` and ``tests/test_template.py`` check what would be deployed. No AWS call is
made: the managed policies the template names are ARNs already, so nothing is looked up in IAM.

Every function's ``CodeUri`` becomes ``s3://bucket/key`` (what ``sam package`` puts there; the
translator refuses a local path).

Raises (exit status 1, message on stderr): the template does not parse or SAM refuses it
(``samtranslator``'s ``InvalidDocumentException``, with every reason).
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any


class _NoManagedPolicies:
    """The translator's managed-policy loader: names no policy (the template uses ARNs)."""

    def load(self) -> dict[str, str]:
        return {}


def transform(text: str) -> dict[str, Any]:
    """The SAM template ``text`` transformed into a CloudFormation template (a dict).

    Raises:
        ModuleNotFoundError: ``samtranslator`` is not installed (it is in ``.venv-sam`` only).
        samtranslator.model.exceptions.InvalidDocumentException: SAM refuses the template.
    """
    # Imported by name: aws-sam-translator comes with the SAM CLI (requirements-sam.lock), not the dev lock.
    translator = importlib.import_module("samtranslator.translator.transform")
    yaml_helper = importlib.import_module("samtranslator.yaml_helper")
    template = yaml_helper.yaml_parse(text)
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/key"
    result: dict[str, Any] = translator.transform(template, {}, _NoManagedPolicies())
    return result


def main(argv: list[str]) -> int:
    """Transform the template named by ``argv[1]`` (``-`` or nothing: stdin) and print it."""
    text = sys.stdin.read() if len(argv) < 2 or argv[1] == "-" else Path(argv[1]).read_text()
    try:
        transformed = transform(text)
    except Exception as exc:  # InvalidDocumentException lists every cause in its message
        print(f"SAM transform failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(transformed, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
