"""``python -m sandbox.cli``: the compose file's CLI service runs the command this way."""

from sandbox.cli import main

main()
