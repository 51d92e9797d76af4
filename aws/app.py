"""Entry point: ``CDK_OUTDIR=cdk.out python aws/app.py`` synthesizes without the CDK CLI; the
CLI runs the same file (see ``aws/cdk.json`` and ``make deploy``)."""

import sys
from pathlib import Path

# Run as a script, so the project directory (where the `aws` package lives) is not on sys.path yet.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aws.stacks.orders import create_app

if __name__ == "__main__":
    create_app().synth()
