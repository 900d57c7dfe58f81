"""tools/audit_deps.py (`make audit-deps`): says plainly when it could not audit."""

import json
import subprocess
import urllib.error

from tools import audit_deps


def pip_audit_says(monkeypatch, dependencies):
    monkeypatch.setattr(audit_deps, "reachable", lambda: None)
    output = json.dumps({"dependencies": dependencies, "fixes": []})
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, output, ""))


def test_an_unreachable_index_exits_3_and_says_nothing_was_checked(monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(audit_deps.urllib.request, "urlopen", refuse)
    assert audit_deps.main() == 3
    assert "CANNOT AUDIT" in capsys.readouterr().out


def test_packages_the_index_does_not_know_exit_3_with_their_names(monkeypatch, capsys):
    pip_audit_says(
        monkeypatch,
        [{"name": "django", "version": "5.2.19", "vulns": []}, {"name": "tqdm", "skip_reason": "not found"}],
    )
    assert audit_deps.main() == 3
    out = capsys.readouterr().out
    assert "1 of 2 installed packages audited" in out and "NOT AUDITED (1)" in out and "tqdm" in out


def test_a_known_vulnerability_exits_1_with_its_fix(monkeypatch, capsys):
    vuln = {"id": "PYSEC-0000-1", "fix_versions": ["5.2.20"], "aliases": [], "description": ""}
    pip_audit_says(monkeypatch, [{"name": "django", "version": "5.2.19", "vulns": [vuln]}])
    assert audit_deps.main() == 1
    assert "VULNERABLE django 5.2.19: PYSEC-0000-1 (fixed in: 5.2.20)" in capsys.readouterr().out


def test_every_package_audited_and_clean_exits_0(monkeypatch):
    pip_audit_says(monkeypatch, [{"name": "django", "version": "5.2.19", "vulns": []}])
    assert audit_deps.main() == 0
