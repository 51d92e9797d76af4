"""What is uploaded: the handler modules alone (never the local stand-ins), and a layer of their
dependencies built for Lambda's platform (manylinux x86_64, CPython 3.12), not for this machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from aws import assets

ELF_MACHINE_X86_64 = 0x3E


def _files(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}


def _code_dir(synth, function) -> Path:
    code = synth.resources[synth.logical_id(function)]["Properties"]["Code"]
    return synth.asset_dir(code)


@pytest.fixture(scope="module")
def layer_dir(synth) -> Path:
    (layer,) = synth.of_type("AWS::Lambda::LayerVersion").values()
    return synth.asset_dir(layer["Properties"]["Content"]) / "python"


def test_handler_asset_is_the_functions_package_alone(synth) -> None:
    uploaded = _files(_code_dir(synth, synth.stack.functions.consumer))
    sources = assets.SANDBOX_DIR / "functions"
    expected = {"sandbox/__init__.py"} | {
        f"sandbox/functions/{path.name}" for path in sources.glob("*.py")
    }
    assert uploaded == expected
    local = {  # the stand-ins, the platform, the CLI ...: never in a Lambda function's code
        str(path.relative_to(assets.PROJECT_DIR))
        for path in assets.SANDBOX_DIR.rglob("*.py")
        if path.parent != sources and path.parent != assets.SANDBOX_DIR
    }
    assert local and not uploaded & local


def test_every_handler_names_a_module_in_its_asset(synth) -> None:
    functions = synth.of_type("AWS::Lambda::Function")
    checked = 0
    for logical_id, function in functions.items():
        props = function["Properties"]
        if not props.get("Runtime", "").startswith("python"):
            continue  # CDK's own custom-resource providers
        module = props["Handler"].rpartition(".")[0].replace(".", "/")
        assert (synth.asset_dir(props["Code"]) / f"{module}.py").is_file(), logical_id
        assert props["Runtime"] == "python3.12"
        assert props["Architectures"] == ["x86_64"]
        checked += 1
    assert checked >= 4  # producer, consumer, reconcile, migrate (+ direct)


def test_admin_asset_carries_the_schema_and_grants_the_local_stack_applies(synth) -> None:
    admin = _code_dir(synth, synth.stack.functions.reconcile)
    assert _files(admin) == {"reconcile.py", "schema.sql", "grants.sql"}
    assert (admin / "schema.sql").read_text() == assets.SCHEMA.read_text()
    assert (admin / "grants.sql").read_text() == assets.GRANTS.read_text()


def test_layer_has_the_dependencies_at_the_versions_tested_here(layer_dir) -> None:
    for requirement in assets.pinned_requirements():
        name, _, version = requirement.partition("==")
        distribution = name.partition("[")[0].replace("-", "_")
        assert (layer_dir / f"{distribution}-{version}.dist-info").is_dir(), requirement
    assert (layer_dir / "psycopg_binary").is_dir()
    assert not (layer_dir / "boto3").exists()  # the runtime has it
    assert not (layer_dir / "bin").exists()


@pytest.mark.parametrize("package", ["psycopg_binary", "pydantic_core"])
def test_layer_binaries_are_built_for_lambda(layer_dir, package) -> None:
    dist_info = next(layer_dir.glob(f"{package}-*.dist-info"))
    tags = [
        line for line in (dist_info / "WHEEL").read_text().splitlines() if line.startswith("Tag:")
    ]
    assert tags and all("cp312-cp312-manylinux" in tag and tag.endswith("x86_64") for tag in tags)
    extensions = list((layer_dir / package).glob("*.so"))
    assert extensions
    for extension in extensions:
        assert ".cpython-312-x86_64-linux-gnu." in extension.name
        header = extension.read_bytes()[:20]
        assert header[:4] == b"\x7fELF"
        assert int.from_bytes(header[18:20], "little") == ELF_MACHINE_X86_64


def test_layer_is_reused_when_its_inputs_are_unchanged(synth) -> None:
    before = assets.build_layer().stat().st_ino
    assert assets.build_layer().stat().st_ino == before
