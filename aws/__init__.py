"""The CDK app: the guidance's architecture around the handlers in ``sandbox/functions``.

Importing this package sets the environment the jsii runtime reads when ``aws_cdk`` is first
imported, so neither ``python aws/app.py`` nor the tests need anything from the user: the Node 20
end-of-life banner is silenced (jsii still runs on it), and jsii's package cache goes under
``build/`` rather than $HOME.
"""

import os
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
BUILD_DIR = PROJECT_DIR / "build"

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_RUNTIME_PACKAGE_CACHE_ROOT", str(BUILD_DIR / "jsii-cache"))
