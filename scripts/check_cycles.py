#!/usr/bin/env python3
"""No import cycles between nomadd's modules (docs/architecture.md §Layering).

Builds the import graph with grimp (the library under import-linter), counting every import a
module makes: at module level, inside functions, and under ``if TYPE_CHECKING:``. A lazy import
or a type-only import still ties two modules together, so it may not close a cycle either.
Prints each cycle found (one shortest loop per strongly connected group, with the lines that
make it) and exits 1; exits 0 when there are none.

``KNOWN_CYCLES`` lists the cycles that are being taken apart right now, each with exactly the
modules it holds today. A known cycle that changes (grows, shrinks or goes away) fails the check
too, so the list is updated with the code and never hides a new cycle. It should be empty.

Usage: scripts/check_cycles.py [PACKAGE]   (default: nomadd)
"""

from __future__ import annotations

import itertools
import sys
from collections import deque

import grimp

# Cycles being removed, each with the exact set of modules it holds; see the module docstring.
KNOWN_CYCLES: dict[str, frozenset[str]] = {}


def strongly_connected(nodes: set[str], edges: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative; the groups of two or more modules (or a self-import)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[set[str]] = []
    counter = 0
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1 or node in edges[node]:
                    groups.append(group)
    return groups


def shortest_loop(start: str, group: set[str], edges: dict[str, set[str]]) -> list[str]:
    """The shortest path start → … → start inside the group (breadth first)."""
    prev: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(edges[node] & group):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(prev[path[-1]])
                return [start, *reversed(path[:-1]), start] if node != start else [start, start]
            if nxt not in prev:
                prev[nxt] = node
                queue.append(nxt)
    return [start]


def main(argv: list[str]) -> int:
    package = argv[1] if len(argv) > 1 else "nomadd"
    graph = grimp.build_graph(package, exclude_type_checking_imports=False, cache_dir=None)
    nodes = set(graph.modules)
    edges = {m: set(graph.find_modules_directly_imported_by(m)) & nodes for m in nodes}
    groups = strongly_connected(nodes, edges)
    known = {group: name for name, group in KNOWN_CYCLES.items()}
    bad = 0
    for group in sorted(groups, key=lambda g: sorted(g)):
        name = known.pop(frozenset(group), None)
        if name is not None:
            print(f"known cycle ({name}): {len(group)} modules, being removed")
            continue
        bad += 1
        loop = shortest_loop(min(group), group, edges)
        print(f"cycle among {len(group)} modules: {', '.join(sorted(group))}")
        for importer, imported in itertools.pairwise(loop):
            details = graph.get_import_details(importer=importer, imported=imported)
            where = ", ".join(f"line {d['line_number']}" for d in details) or "?"
            print(f"  {importer} -> {imported} ({where})")
    for name in known.values():
        bad += 1
        print(f"known cycle ({name}) changed or is gone: update KNOWN_CYCLES in {sys.argv[0]}")
    if bad:
        print(f"{bad} import cycle problem(s) in {package} ({len(nodes)} modules)")
        return 1
    print(f"no new import cycles in {package} ({len(nodes)} modules, {len(KNOWN_CYCLES)} known)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
