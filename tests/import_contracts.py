"""import-linter contract type: no import cycle among ANY modules of a package.

acyclic_siblings misses cycles that pass through a package's own __init__ (e.g.
pkg/__init__ -> pkg.cli.app -> pkg); this one runs Tarjan's SCC over every module.
"""

from __future__ import annotations

import grimp
from importlinter import Contract, ContractCheck, fields, output
from importlinter.application import contract_utils


def import_cycles(graph: grimp.ImportGraph, package: str) -> list[list[str]]:
    """Strongly connected components (size >= 2) of the import graph restricted to `package`."""
    modules = {package} | graph.find_descendants(package)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & modules - {m}) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    sccs: list[list[str]] = []
    counter = 0
    for root in sorted(modules):  # iterative Tarjan: no recursion limit worries
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(edges[nxt])))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == node:
                            break
                    if len(comp) > 1:
                        sccs.append(sorted(comp))
    return sorted(sccs)


class NoImportCyclesContract(Contract):
    type_name = "no_import_cycles"

    packages = fields.ListField(subfield=fields.StringField())
    ignore_imports = fields.SetField(subfield=fields.ImportExpressionField(), required=False)
    unmatched_ignore_imports_alerting = fields.EnumField(
        contract_utils.AlertLevel, default=contract_utils.AlertLevel.ERROR
    )

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        removal = contract_utils.remove_ignored_imports_and_report(
            graph=graph,
            ignore_imports=self.ignore_imports,  # type: ignore[arg-type]
            unmatched_alerting=self.unmatched_ignore_imports_alerting,  # type: ignore[arg-type]
        )
        found = {p: import_cycles(graph, p) for p in self.packages}  # type: ignore[attr-defined]
        found = {p: c for p, c in found.items() if c}
        return ContractCheck(
            kept=not found,
            warnings=list(removal.warnings),
            ignored_import_count=removal.ignored_import_count,
            metadata={"cycles": found},
        )

    def render_broken_contract(self, check: ContractCheck) -> None:
        for package, cycles in check.metadata["cycles"].items():
            for comp in cycles:
                output.print_error(f"Import cycle in {package} among {len(comp)} modules:")
                for m in comp:
                    output.print_error(f"    {m}", bold=False)
                output.new_line()
