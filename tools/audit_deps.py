"""`make audit-deps`: pip-audit over the packages installed in this virtualenv (the pinned
requirements and everything they pull in), against PyPI's vulnerability data.

Says plainly what it could not do rather than passing quietly. Exit 0: every package audited, no
known vulnerability; 1: a known vulnerability (listed, with the fixed versions); 3: the audit
could not be done, or not for every package (the index is unreachable or does not know them)."""

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

INDEX = "https://pypi.org/pypi/pip/json"  # the JSON API pip-audit's PyPI service reads
PIP_AUDIT = Path(sys.executable).with_name("pip-audit")


def reachable() -> str | None:
    """None when PyPI's JSON API answers, else why not."""
    try:
        with urllib.request.urlopen(INDEX, timeout=10):
            return None
    except (urllib.error.URLError, OSError) as error:
        return str(getattr(error, "reason", error))


def main() -> int:
    problem = reachable()
    if problem is not None:
        print(f"audit-deps: CANNOT AUDIT: {INDEX} is unreachable ({problem}). Dependencies were NOT checked.")
        return 3
    result = subprocess.run(
        [str(PIP_AUDIT), "--format=json", "--progress-spinner=off", "--skip-editable"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        print(f"audit-deps: CANNOT AUDIT: pip-audit failed (exit {result.returncode}):\n{result.stderr}")
        return 3
    packages = report["dependencies"]
    skipped = [package for package in packages if "skip_reason" in package]
    vulnerable = [package for package in packages if package.get("vulns")]
    for package in vulnerable:
        for vuln in package["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
            print(f"VULNERABLE {package['name']} {package['version']}: {vuln['id']} (fixed in: {fixed})")
    audited = len(packages) - len(skipped)
    print(f"audit-deps: {audited} of {len(packages)} installed packages audited, {len(vulnerable)} vulnerable.")
    if skipped:
        names = ", ".join(package["name"] for package in skipped)
        print(f"audit-deps: NOT AUDITED ({len(skipped)}): the index does not know these versions: {names}")
    if vulnerable:
        return 1
    return 3 if skipped else 0


if __name__ == "__main__":
    sys.exit(main())
