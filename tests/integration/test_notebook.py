"""The workshop notebook runs top to bottom on a real stack and shows what its text promises."""

from __future__ import annotations

import json
from pathlib import Path

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "workshop.ipynb"


def test_the_workshop_notebook_runs_and_tells_the_truth(live, unknown_poison_customer):
    namespace: dict = {}
    for cell in json.loads(NOTEBOOK.read_text())["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), NOTEBOOK.name, "exec"), namespace)

    assert namespace["committed"]("nb-steady") == 200
    assert namespace["moved"] >= 1
    assert namespace["committed"](namespace["poison_id"]) == 1
    queue, direct = namespace["result"].paths
    assert queue.lost == 0 and queue.committed_once == queue.accepted == 300
    assert direct.accepted + direct.client_errors == 300
    for path in namespace["lagged"].paths:  # "gone, on both paths", as the text says
        assert path.balanced and path.lost > 0
    assert namespace["state"].writer.name == "n1"
