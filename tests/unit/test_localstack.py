"""LocalStack's prebuilt index of the AWS APIs: named as LocalStack looks for it, built once."""

import subprocess
from pathlib import Path

from sandbox.standins import localstack


def environment(tmp_path, monkeypatch, localstack_version="2026.3.0", botocore="1.42.72"):
    """A LocalStack venv's layout, as far as the catalog needs it."""
    venv = tmp_path / "venv-localstack"
    packages = venv / "lib" / "python3.13" / "site-packages"
    for name in (f"localstack_core-{localstack_version}", f"botocore-{botocore}"):
        (packages / f"{name}.dist-info").mkdir(parents=True)
    (venv / "bin").mkdir()
    (venv / "bin" / "python").touch()
    monkeypatch.setenv("SANDBOX_LOCALSTACK_PYTHON", str(venv / "bin" / "python"))
    return venv


def test_the_catalog_is_named_after_the_installed_versions(tmp_path, monkeypatch):
    environment(tmp_path, monkeypatch)
    assert localstack.catalog_name() == "service-catalog-2026_3_0-1_42_72.dill"


def test_a_built_catalog_is_not_built_again(tmp_path, monkeypatch):
    venv = environment(tmp_path, monkeypatch)
    built = venv / "share" / "localstack" / localstack.catalog_name()
    built.parent.mkdir(parents=True)
    built.touch()
    runs = []
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: runs.append(args))
    assert localstack.service_catalog() == [built]
    assert runs == []


def test_an_upgraded_environment_builds_its_own(tmp_path, monkeypatch):
    venv = environment(tmp_path, monkeypatch, botocore="1.43.0")
    old = venv / "share" / "localstack" / "service-catalog-2026_3_0-1_42_72.dill"
    old.parent.mkdir(parents=True)
    old.touch()

    def build(argv, env, **kwargs):  # what `python -m localstack.aws.spec` writes
        static = Path(env["FILESYSTEM_ROOT"], "usr", "lib", "localstack")
        (static / "service-catalog-2026_3_0-1_43_0.dill").write_text("index")

    monkeypatch.setattr(subprocess, "run", build)
    assert [p.name for p in localstack.service_catalog()] == [
        "service-catalog-2026_3_0-1_42_72.dill",
        "service-catalog-2026_3_0-1_43_0.dill",
    ]
