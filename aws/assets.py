"""The Lambda code and its dependencies, packaged for the Lambda platform without Docker.

Three directories, each becoming one CDK asset:

- the handlers: ``sandbox/__init__.py`` and ``sandbox/functions/`` copied alone, so the local
  stand-ins beside them (gateway, runner, stack...) can never be deployed by accident;
- a layer with what the handlers import beyond the runtime, installed by pip for manylinux x86_64
  and CPython 3.12 (binary wheels only: psycopg's C extension must be built for Lambda, not for this
  machine), pinned to the versions installed here so AWS runs what the local sandbox tested;
- the admin function (``aws/functions/reconcile.py``) with the schema it applies.

The layer is rebuilt only when its inputs change (pins, platform, Python version): a synth after the
first one costs a directory hash, not a download.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from aws import BUILD_DIR, PROJECT_DIR

LAMBDA_PYTHON = "3.12"
LAMBDA_PLATFORM = "manylinux2014_x86_64"
#: What ``sandbox/functions`` imports that the Lambda runtime lacks (boto3 comes with the runtime).
LAYER_REQUIREMENTS = ("aws-lambda-powertools", "pydantic", "psycopg[binary]")

SANDBOX_DIR = PROJECT_DIR / "sandbox"
SCHEMA = SANDBOX_DIR / "spec" / "schema.sql"  # the local stack's too
GRANTS = SANDBOX_DIR / "spec" / "grants.sql"  # the application role's privileges, likewise
ADMIN_SOURCE = Path(__file__).resolve().parent / "functions" / "reconcile.py"


def pinned_requirements() -> list[str]:
    """Each layer requirement pinned to the version installed in this environment."""
    return [f"{spec}=={version(spec.partition('[')[0])}" for spec in LAYER_REQUIREMENTS]


def pip_platform_args() -> list[str]:
    return [
        "--platform",
        LAMBDA_PLATFORM,
        "--implementation",
        "cp",
        "--python-version",
        LAMBDA_PYTHON,
        "--only-binary=:all:",
    ]


def build_layer(target: Path = BUILD_DIR / "layer") -> Path:
    """Install the layer's packages under ``target/python`` (the layout Lambda layers use).

    Built into a sibling directory and renamed into place, so an interrupted build never leaves a
    half-filled layer that a later synth would take for a finished one.
    """
    requirements = pinned_requirements()
    inputs = json.dumps([requirements, pip_platform_args()])
    stamp = target.with_name(f"{target.name}.inputs")
    if target.is_dir() and stamp.is_file() and stamp.read_text() == inputs:
        return target

    partial = target.with_name(f"{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    # No .pyc: they would be compiled by this interpreter, and Lambda compiles at import anyway.
    command += ["--no-compile", *pip_platform_args(), "--target", str(partial / "python")]
    subprocess.run([*command, *requirements], check=True)
    shutil.rmtree(partial / "python" / "bin", ignore_errors=True)  # console scripts: not importable

    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    stamp.write_text(inputs)
    return target


def stage_handlers(target: Path = BUILD_DIR / "lambda" / "handlers") -> Path:
    """Copy the handler package, and nothing else from ``sandbox/``, into ``target``."""
    shutil.rmtree(target, ignore_errors=True)
    (target / "sandbox" / "functions").mkdir(parents=True)
    shutil.copyfile(SANDBOX_DIR / "__init__.py", target / "sandbox" / "__init__.py")
    for source in sorted((SANDBOX_DIR / "functions").glob("*.py")):
        shutil.copyfile(source, target / "sandbox" / "functions" / source.name)
    return target


def stage_admin(target: Path = BUILD_DIR / "lambda" / "admin") -> Path:
    """The reconcile/migrate function, the schema and grants it applies (the local stack's)."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    shutil.copyfile(ADMIN_SOURCE, target / ADMIN_SOURCE.name)
    shutil.copyfile(SCHEMA, target / "schema.sql")
    shutil.copyfile(GRANTS, target / "grants.sql")
    return target


def handler_exists(code_dir: Path, handler: str) -> bool:
    """Whether ``module.path.function``'s module is a file in the staged code."""
    module = handler.rpartition(".")[0]
    return (code_dir / f"{module.replace('.', '/')}.py").is_file()
