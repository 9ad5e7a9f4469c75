"""The import graph of ``smtpshell/``, read from the source: no cycles, imports one way.

The graph is built with :mod:`ast` from every ``.py`` file under ``smtpshell/``, without
importing anything. It holds every ``import`` and ``from … import`` (absolute and
relative, at the top of a module and inside functions and classes), except those under
``if TYPE_CHECKING:``, which never run and so can neither form a cycle nor pull a layer in
at run time.

Nodes are modules (``smtpshell.tls.report``); a package is the node of its
``__init__.py`` (``smtpshell.tls``). An edge goes to the most specific module named:
``from .tls import report`` is an edge to ``smtpshell.tls.report``, ``from .tls import
TlsOptions`` one to ``smtpshell.tls``. Importing ``p.q.m`` from outside ``p`` also runs
``p/__init__.py`` and ``p/q/__init__.py``, so it adds an edge to each of those packages as
well (shown as ``(implicitly)``); a module inside ``p`` gets no such edge to ``p``, because
``p`` is already being imported when its own modules run.

Cycles. A package whose ``__init__`` imports its own modules (to re-export their names)
is the one fine case of a package and its modules: the edges point down. A module that
imports names back from its own package's ``__init__`` while that ``__init__`` imports it
is a cycle like any other, and fails.

Layers. The rules (``MAY_IMPORT``) are the target layout's: the bottom modules use only
the standard library, and each layer may import the ones listed for it and its own
modules. Today's code does not meet all of them yet: every edge that breaks a rule or
closes a cycle today is listed, with the reason, in ``KNOWN_VIOLATIONS_TODAY``; the test
fails on any other, and on an entry of that list that no longer occurs (so the list only
shrinks).
"""

from __future__ import annotations

import ast
import functools
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = "smtpshell"
PACKAGE_DIR = Path(__file__).resolve().parent.parent / ROOT

# ---- the rules ---------------------------------------------------------------------------
#
# A module's layer is the first part of its name under smtpshell (``smtpshell.tls.report``
# -> "tls"; the package ``smtpshell`` itself -> "smtpshell"). Every layer may import its own
# modules and the standard library; MAY_IMPORT says which of our other layers it may
# import (a dotted entry, "protocol.events", allows that module only), THIRD_PARTY which
# installed distributions.

ANY = frozenset({"*"})

LEAVES = frozenset({"escapes", "status", ROOT})
"""Modules that import nothing of ours and only the standard library, which any layer may
import. Beyond the design's sentence, argued: ``escapes`` holds the one function that makes
outside text safe for the terminal, which every layer that shows outside text must use;
``status`` is ``ExitStatus``, the value every front end returns; the package ``smtpshell``
itself holds only the version."""

MAY_IMPORT: dict[str, frozenset[str]] = {
    # sans-IO core and the escaping rules: the standard library only
    "protocol": LEAVES,
    "escapes": frozenset(),
    "status": frozenset(),
    ROOT: frozenset(),
    # I/O at the bottom: asyncio streams, SSL contexts, certificates
    "transport": LEAVES,
    "tls": LEAVES,
    "session": LEAVES | {"protocol", "transport", "tls"},
    # replay and mock open TLS connections and serve TLS: they build the SSL contexts that
    # tls makes from options (argued; the design's sentence leaves tls out of this list)
    "transcript": LEAVES | {"session", "protocol", "transport", "tls"},
    "explain": LEAVES | {"protocol"},
    "compose": LEAVES | {"protocol"},
    "config": LEAVES,
    "context": LEAVES,
    "sandbox": LEAVES | {"tls", "transport"},
    # MX, DANE and MTA-STS (issue 17): DNS and certificate checks, below the session
    "mailsec": LEAVES,
    "ui": LEAVES | {"session", "transcript", "explain", "compose", "config", "context",
                    # argued, beyond the design's sentence: the types the session hands out
                    # (its events; Stage and Mode in its snapshot), the one redaction point
                    # and strict base64 (the history and /b64, /unb64 use them), and the TLS
                    # report and failures in words that the shell prints (tls/report, errors)
                    "protocol.events", "protocol.state", "protocol.sasl.redact",
                    "protocol.sasl.b64", "tls",
                    # /mx, /dane, /mta-sts look things up from the shell (issue 17); the
                    # command module imports mailsec only inside its handlers (dnspython)
                    "mailsec"},
    # the front ends: anything; nothing but them imports ui, cli or pytest_plugin
    "cli": ANY,
    "pytest_plugin": ANY,
    "__main__": ANY,
}

ONLY_FRONT_ENDS_IMPORT = frozenset({"ui", "cli", "pytest_plugin", "__main__"})
FRONT_ENDS = frozenset({"cli", "pytest_plugin", "__main__"})

THIRD_PARTY: dict[str, frozenset[str]] = {
    "tls": frozenset({"cryptography"}),  # lazily: see LAZY_ONLY
    "sandbox": frozenset({"aiosmtpd", "trustme"}),
    "mailsec": frozenset({"dns", "cryptography"}),  # dnspython; cryptography lazily
    "ui": frozenset({"prompt_toolkit", "pygments"}),
    "pytest_plugin": ANY,
    "cli": ANY,
}
LAZY_ONLY = frozenset({"cryptography"})
"""Imported only inside the functions that need them, never when a module loads
(``cryptography`` costs start-up time and is needed only to explain a bad certificate)."""

NO_IO_LAYERS = frozenset({"protocol", "escapes"})
IO_MODULES = frozenset({"asyncio", "ssl", "socket", "selectors", "select", "time", "threading",
                        "subprocess", "signal"})
"""The protocol core never blocks, reads a clock, or prints (checked too: no ``print``)."""

# ---- what today's code does that the rules above forbid -----------------------------------
#
# Edges "importer -> imported" (module names without the "smtpshell." prefix; the importer
# may be a package, "ui", which stands for every module in it, so that moving a module
# inside its layer does not change the list). Each one is either a rule broken today or
# the edge that closes a cycle today; the restructuring (issue 14) removes them, and then
# its entry here. Keep the reason with each.

KNOWN_VIOLATIONS_TODAY: dict[str, str] = {}


# ---- the graph ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Edge:
    source: str  # module name, e.g. "smtpshell.ui.core"
    target: str  # a module of ours, or the top-level name of another one ("ssl")
    line: int
    lazy: bool  # inside a function (runs when called, not when the module loads)
    implicit: bool = False  # a package's __init__ that importing one of its modules runs

    def __str__(self) -> str:
        how = " (implicitly)" if self.implicit else " (inside a function)" if self.lazy else ""
        return f"{short(self.source)} -> {short(self.target)}{how}  [line {self.line}]"


def short(module: str) -> str:
    return module.removeprefix(ROOT + ".")


def layer(module: str) -> str:
    return module.split(".")[1] if "." in module else module


def modules() -> dict[str, Path]:
    """Module name -> file, for every module and package under smtpshell/."""
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement outside ``if TYPE_CHECKING:``, with whether it is in a function."""

    def visit(node: ast.AST, in_function: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom,
                                                                   bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, in_function
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for other in child.orelse:  # the else branch does run
                    yield from visit(other, in_function)
            else:
                function = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
                yield from visit(child, in_function or function)

    yield from visit(tree, False)


def edges_of(name: str, path: Path, known: dict[str, Path]) -> Iterator[Edge]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node, lazy in _imports(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                targets.append(submodule if submodule in known else module)
        for target in dict.fromkeys(targets):
            if target == ROOT or target.startswith(ROOT + "."):
                while target not in known:  # "import smtpshell.x.name" of something unknown
                    target = target.rpartition(".")[0]
                yield Edge(name, target, node.lineno, lazy)
                # the packages that importing ``target`` runs first, when outside them
                parts = target.split(".")
                for n in range(2, len(parts)):
                    parent = ".".join(parts[:n])
                    if not (name == parent or name.startswith(parent + ".")):
                        yield Edge(name, parent, node.lineno, lazy, implicit=True)
            else:
                yield Edge(name, target.split(".")[0], node.lineno, lazy)


@functools.cache
def import_graph() -> tuple[Edge, ...]:
    known = modules()
    edges: dict[tuple[str, str], Edge] = {}
    for name, path in known.items():
        for edge in edges_of(name, path, known):
            key = (edge.source, edge.target)
            # keep one edge per pair: the one that runs earliest (explicit, at load time)
            if key not in edges or (edges[key].implicit, edges[key].lazy) > (
                edge.implicit, edge.lazy
            ):
                edges[key] = edge
    return tuple(sorted(edges.values(), key=lambda e: (e.source, e.target)))


def internal(edges: Iterable[Edge]) -> list[Edge]:
    return [e for e in edges if e.target == ROOT or e.target.startswith(ROOT + ".")]


def cycles(edges: list[Edge]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    graph: dict[str, list[str]] = {}
    for e in edges:
        graph.setdefault(e.source, []).append(e.target)
        graph.setdefault(e.target, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component: list[str] = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                found.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph) + 100))
    try:
        for v in sorted(graph):
            if v not in index:
                connect(v)
    finally:
        sys.setrecursionlimit(limit)
    return found


def shortest_cycle(edges: Iterable[Edge], component: list[str]) -> list[str]:
    """One shortest cycle through the modules of ``component``, as a path that ends where
    it starts."""
    members = set(component)
    graph: dict[str, list[str]] = {}
    for e in edges:
        if e.source in members and e.target in members:
            graph.setdefault(e.source, []).append(e.target)
    best: list[str] = []
    for start in component:
        came_from: dict[str, str] = {}
        queue = [start]
        while queue and start not in came_from:
            node = queue.pop(0)
            for nxt in graph.get(node, []):
                if nxt not in came_from:
                    came_from[nxt] = node
                    queue.append(nxt)
        if start in came_from:
            path = [start]
            while len(path) == 1 or path[-1] != start:
                path.append(came_from[path[-1]])
            path.reverse()
            if not best or len(path) < len(best):
                best = path
    return best


def rule_broken(edge: Edge) -> str | None:
    """Why ``edge`` breaks a rule, or None."""
    src = layer(edge.source)
    if src not in MAY_IMPORT:
        return f"{short(edge.source)} is in no layer of MAY_IMPORT: add its layer there"
    if edge.target == ROOT or edge.target.startswith(ROOT + "."):
        dst = layer(edge.target)
        if dst == src or edge.implicit:
            return None
        if dst in ONLY_FRONT_ENDS_IMPORT and src not in FRONT_ENDS:
            return f"nothing but {', '.join(sorted(FRONT_ENDS))} imports {dst}"
        allowed = MAY_IMPORT[src]
        target = short(edge.target)
        if allowed == ANY or dst in allowed or any(
            target == entry or target.startswith(entry + ".") for entry in allowed
        ):
            return None
        return f"{src} may import only {', '.join(sorted(allowed)) or 'the standard library'}"
    if edge.target in sys.stdlib_module_names or edge.target == "__future__":
        if src in NO_IO_LAYERS and edge.target in IO_MODULES:
            return f"{src} does no I/O and reads no clock (no {edge.target})"
        return None
    party = THIRD_PARTY.get(src, frozenset())
    if party != ANY and edge.target not in party:
        return f"{src} may not use {edge.target} (it may: {', '.join(sorted(party)) or 'none'})"
    if edge.target in LAZY_ONLY and not edge.lazy:
        return f"{edge.target} is imported only inside the functions that need it"
    return None


def prints_in_protocol() -> list[str]:
    """``print(...)`` calls in the sans-IO layers."""
    found = []
    for name, path in modules().items():
        if layer(name) in NO_IO_LAYERS:
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                        and node.func.id == "print"):
                    found.append(f"{short(name)}:{node.lineno} prints")
    return found


def render(edges: Iterable[Edge]) -> str:
    """The graph of our modules, one importer per line, for a failure message."""
    by_source: dict[str, list[str]] = {}
    for e in internal(edges):
        if not e.implicit:
            by_source.setdefault(short(e.source), []).append(
                short(e.target) + ("*" if e.lazy else ""))
    width = max(map(len, by_source), default=0)
    lines = [f"  {src:<{width}} -> {', '.join(dst)}" for src, dst in sorted(by_source.items())]
    return "the import graph (* = inside a function):\n" + "\n".join(lines)


def key(edge: Edge) -> str:
    return f"{short(edge.source)} -> {short(edge.target)}"


def known(edge: Edge) -> str | None:
    """The entry of KNOWN_VIOLATIONS_TODAY that covers ``edge``, or None."""
    source, target = short(edge.source), short(edge.target)
    for entry in KNOWN_VIOLATIONS_TODAY:
        importer, _, imported = entry.partition(" -> ")
        if target == imported and (source == importer or source.startswith(importer + ".")):
            return entry
    return None


# ---- the tests -----------------------------------------------------------------------------


def test_the_graph_is_read_from_the_source() -> None:
    """The parts this test relies on (guards against a graph that is silently empty)."""
    edges = import_graph()
    names = {key(e) for e in edges}
    assert "session -> protocol" in {f"{layer(e.source)} -> {layer(e.target)}"
                                     for e in internal(edges)}, render(edges)
    assert any(e.target == "asyncio" for e in edges if short(e.source) == "transport")
    assert len(modules()) > 30
    # TYPE_CHECKING-only imports are not edges
    src = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import ssl\nimport re\n"
    tree = ast.parse(src)
    assert [type(n).__name__ for n, _ in _imports(tree)] == ["ImportFrom", "Import"]
    assert names  # printed by render() on the failures below


def test_no_import_cycles() -> None:
    edges = [e for e in internal(import_graph()) if not known(e)]
    found = cycles(edges)
    if found:
        described = []
        for component in found:
            members = set(component)
            inside = [str(e) for e in edges if e.source in members and e.target in members]
            described.append("cycle: " + " -> ".join(map(short, shortest_cycle(edges, component)))
                             + "\n  the edges among " + ", ".join(map(short, component))
                             + ":\n    " + "\n    ".join(inside))
        raise AssertionError("\n".join(described) + "\n\n" + render(import_graph()))


def test_imports_follow_the_layers() -> None:
    edges = import_graph()
    broken = [f"{e}: {why}" for e in edges
              if (why := rule_broken(e)) and not known(e)]
    broken += prints_in_protocol()
    assert not broken, "\n".join(["imports that break the layering:", *broken, "",
                                  render(edges)])


def test_known_violations_still_occur() -> None:
    """An entry fixed by the code leaves the list, so that the list only shrinks."""
    graph = import_graph()
    still = {known(e) for e in graph if rule_broken(e)}
    for component in cycles(internal(graph)):
        members = set(component)
        still |= {known(e) for e in graph if e.source in members and e.target in members}
    stale = sorted(set(KNOWN_VIOLATIONS_TODAY) - still)
    assert not stale, ("fixed, so remove from KNOWN_VIOLATIONS_TODAY in "
                       f"tests/test_architecture.py: {stale}")


# ---- the project carries its own map --------------------------------------------------------

REPO = PACKAGE_DIR.parent
OUTSIDE = ("DESIGN" + ".md", "REFERENCE" + ".md", "../" + "shared", "/work/" + "shared")
"""Documents that lived beside the repository while it was written; the repository must
not send its reader to them (its own map is docs/architecture.md)."""


def repository_text_files() -> Iterator[Path]:
    yield from (REPO / name for name in ("README.md", "pyproject.toml", ".ci/run")
                if (REPO / name).is_file())
    for folder in ("smtpshell", "tests", "bench", "docs", "transcripts"):
        for path in sorted((REPO / folder).rglob("*")):
            if path.is_file() and path.suffix in {".py", ".md", ".smtp", ".toml", ".txt", ""}:
                yield path


def test_the_repository_names_no_document_outside_it() -> None:
    found = []
    for path in repository_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for line_no, line in enumerate(text.splitlines(), 1):
            found += [f"{path.relative_to(REPO)}:{line_no}: {name}"
                      for name in OUTSIDE if name in line]
    assert not found, "\n".join(found)


def test_the_documents_link_only_to_files_in_the_repository() -> None:
    """Every relative link in README.md and docs/ names a file that exists in the repo."""
    link = re.compile(r"\]\(([^)\s]+)\)")
    broken = []
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for line_no, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            for target in link.findall(line):
                if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                    continue  # https:, mailto:, a heading in the same file
                path = (doc.parent / target.split("#")[0]).resolve()
                if not path.is_relative_to(REPO) or not path.exists():
                    broken.append(f"{doc.relative_to(REPO)}:{line_no}: {target}")
    assert not broken, "\n".join(broken)
