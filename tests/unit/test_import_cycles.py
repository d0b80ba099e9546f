"""No import cycles among the core, the first-party handlers and plugins, and the test harness.

The import graph comes from grimp (the library behind import-linter). An import inside a function
counts (it is a cycle that was only hidden); an ``if TYPE_CHECKING:`` import does not (it never runs).
A cycle is reported as its shortest chain of modules, with the line that closes it.
"""

from __future__ import annotations

import grimp

PACKAGES = ("kafka_sidecar", "kafka_sidecar_handlers", "kafka_sidecar_plugins", "kafka_sidecar_testing")
"""The runtime distribution and the test harness (``kafka_sidecar_testing``, a distribution of its own)."""


def import_cycles(graph: grimp.ImportGraph) -> list[str]:
    """One line per direct import ``a -> b`` that closes a cycle (``b`` leads back to ``a``)."""
    found = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back is None:
                continue
            line = graph.get_import_details(importer=importer, imported=imported)[0]["line_number"]
            found.append(f"{' -> '.join((importer, *back))}  (closed by {importer} line {line})")
    return found


def test_the_first_party_packages_have_no_import_cycles() -> None:
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True, cache_dir=None)
    assert import_cycles(graph) == []


def test_a_cycle_is_found_and_named() -> None:
    """The check itself: a graph with a cycle (as a function-level import would make) is reported."""
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg._a", "pkg._b"):
        graph.add_module(module)
    graph.add_import(importer="pkg._a", imported="pkg._b", line_number=3, line_contents="from pkg._b import x")
    graph.add_import(importer="pkg._b", imported="pkg._a", line_number=9, line_contents="from pkg._a import y")
    assert import_cycles(graph) == [
        "pkg._a -> pkg._b -> pkg._a  (closed by pkg._a line 3)",
        "pkg._b -> pkg._a -> pkg._b  (closed by pkg._b line 9)",
    ]
