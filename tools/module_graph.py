"""The module graph of the project: circles (between modules) and the largest modules.

Usage: .venv/bin/python tools/module_graph.py  (from the repository root)
"""

import pathlib
import sys

import grimp

PACKAGES = ["config", "hosts", "nodes", "tokens"]


def main():
    sys.path.insert(0, str(pathlib.Path.cwd()))
    graph = grimp.build_graph(*PACKAGES)
    modules = sorted(m for m in graph.modules if ".migrations" not in m)
    # strongly connected components (Tarjan), on the module level
    index, low, stack, on, sccs = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if ".migrations" in w:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    for m in modules:
        if m not in index:
            visit(m)
    edges = sum(len(graph.find_modules_directly_imported_by(m)) for m in modules)
    print(f"{len(modules)} modules, {edges} direct imports")
    print(f"import circles (strongly connected groups): {len(sccs)}")
    for comp in sccs:
        print("  - " + " <-> ".join(comp))
    sizes = []
    for path in pathlib.Path().glob("*/**/*.py"):
        if path.parts[0] in PACKAGES and "migrations" not in path.parts:
            sizes.append((len(path.read_text().splitlines()), str(path)))
    print("largest modules:")
    for n, p in sorted(sizes, reverse=True)[:10]:
        print(f"  {n:5d} {p}")
    for pkg in ("config", "nodes", "hosts"):
        top = [p for p in pathlib.Path(pkg).glob("*.py")]
        print(f"{pkg}/ top-level modules: {len(top)}")


if __name__ == "__main__":
    main()
