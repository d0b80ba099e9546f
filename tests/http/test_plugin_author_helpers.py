"""``kafka_sidecar.testing``, the helper the runtime package keeps for teams testing a plugin of their own:
the example in docs/writing-plugins.md runs as it stands, and importing the helper pulls in no part of the
broker harness (the ``kafka-sidecar-testing`` distribution)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "writing-plugins.md"


def doc_example() -> str:
    """The Python block of the "In-process HTTP" item under "Testing a handler"."""
    text = DOC.read_text(encoding="utf-8")
    item = text[text.index("- In-process HTTP: **`kafka_sidecar.testing.running_sidecar") :]
    start = item.index("```python\n") + len("```python\n")
    return textwrap.dedent(item[start : item.index("```\n", start)])


@pytest.mark.asyncio
async def test_the_writing_plugins_example_runs_as_documented(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = doc_example()
    assert "from kafka_sidecar.testing import running_sidecar" in source
    module = ModuleType("writing_plugins_example")
    monkeypatch.setitem(sys.modules, module.__name__, module)  # dataclasses look their module up
    exec(compile(source, str(DOC), "exec"), module.__dict__)  # the documented code, unchanged
    await module.test_greet_answers_from_its_config(tmp_path)


def test_the_plugin_author_helper_needs_no_part_of_the_harness() -> None:
    probe = (
        "import sys, kafka_sidecar.testing as t; "
        "print(sorted(t.__all__)); "
        "print(sorted(m for m in sys.modules if m.startswith(('kafka_sidecar_testing', 'pytest', 'cryptography'))))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.splitlines() == ["['RunningSidecar', 'running_sidecar']", "[]"]
