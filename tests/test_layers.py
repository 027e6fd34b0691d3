"""The package's import graph runs one way, by layer, and integrations use public names.

A module may import from its own layer or a lower one, never a higher one: the core
knows nothing of stores' internals, request or access code, integrations or the CLI.
A new upward import fails here, with the module and the import named.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "wsgisession"

#: Lowest first. A module's layer is that of its longest matching prefix.
LAYERS: list[tuple[str, ...]] = [
    # 0. the session core's building blocks
    (
        "wsgisession.errors",
        "wsgisession._options",
        "wsgisession.serialization",
        "wsgisession.signing",
        "wsgisession._input",
        "wsgisession._memo",
        "wsgisession._cookie_header",
        "wsgisession.limits",
        "wsgisession._frameworks",
        "wsgisession._refusals",
        "wsgisession.context",
        "wsgisession.sessions",
        "wsgisession.cookies",
        "wsgisession.events",
    ),
    # 1. stores: the two store families and their implementations
    ("wsgisession.stores",),
    # 2. the middleware and what views use of the session itself
    (
        "wsgisession.middleware",
        "wsgisession._backends",
        "wsgisession.messages",
        "wsgisession.vars",
        "wsgisession.migration",
    ),
    # 3. request data and access control, built on the session
    ("wsgisession.request", "wsgisession.access", "wsgisession.metrics"),
    # 4. configuration: stores and middlewares from URLs, dicts, files
    ("wsgisession.config",),
    # 5. integrations and test helpers
    ("wsgisession.contrib", "wsgisession.testing"),
    # 6. the command line
    ("wsgisession.cli", "wsgisession.__main__"),
]

#: The package's ``__init__`` re-exports the public names of every layer.
TOP = "wsgisession"

#: Integrations, outer layers and observers (metrics) reach the core only through
#: public names.
OUTER = (
    "wsgisession.contrib",
    "wsgisession.testing",
    "wsgisession.cli",
    "wsgisession.config",
    "wsgisession.metrics",
)


def layer_of(module: str) -> int:
    if module == TOP:
        return len(LAYERS)
    best = (-1, -1)
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best[0]:
                best = (len(prefix), index)
    assert best[1] >= 0, f"{module} is in no layer: add it to LAYERS"
    return best[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, absolute module, names) of every wsgisession import in *path*."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            names = [alias.name for alias in node.names]
            if target.startswith("wsgisession"):
                # "from . import x" imports the submodule x
                if not node.module and node.level:
                    found.extend((node.lineno, f"{target}.{name}", []) for name in names)
                else:
                    found.append((node.lineno, target, names))
        elif isinstance(node, ast.Import):
            found.extend(
                (node.lineno, alias.name, [])
                for alias in node.names
                if alias.name.startswith("wsgisession")
            )
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_point_down_the_layers(path: Path) -> None:
    module = module_name(path)
    upward = [
        f"line {line}: {target}"
        for line, target, _ in imports_of(path)
        if layer_of(target) > layer_of(module)
    ]
    assert not upward, f"{module} imports from a higher layer: {upward}"


@pytest.mark.parametrize(
    "path",
    [p for p in MODULES if module_name(p).startswith(OUTER)],
    ids=lambda p: module_name(p),
)
def test_outer_layers_use_only_public_names_of_the_core(path: Path) -> None:
    module = module_name(path)
    # A module may use the privates of its own subpackage (cli/_common.py for cli);
    # a top-level one (config.py) none: no private sibling made for it.
    home = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def is_own(target: str) -> bool:
        return home != TOP and target.startswith(home + ".")

    private = [
        f"line {line}: {target}.{name}"
        for line, target, names in imports_of(path)
        if not is_own(target)
        for name in names
        if name.startswith("_")
    ]
    private += [
        f"line {line}: {target}"
        for line, target, _ in imports_of(path)
        if any(part.startswith("_") and not part.startswith("__") for part in target.split("."))
        and not is_own(target)
        # Private core modules made for integrations that run the lifecycle
        # themselves: werkzeug responses as Django's, the replayable body, and the
        # error_page answer to a refusal (Django's middleware answers store outages).
        and target not in ("wsgisession._frameworks", "wsgisession._input", "wsgisession._refusals")
        # the session view Flask's and Django's integrations share (contrib's own)
        and target != "wsgisession.contrib._view"
    ]
    tree = ast.parse(path.read_text())
    # Private attributes that the module's own package defines on its objects are
    # that package's business (contrib.flask and its FlaskSession, say).
    own = {
        node.attr
        for sibling in (path.parent.glob("*.py") if path.parent != PACKAGE else [path])
        for node in ast.walk(ast.parse(sibling.read_text()))
        if isinstance(node, ast.Attribute)
        and isinstance(node.ctx, ast.Store)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    }
    private += [
        f"line {node.lineno}: .{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"})
        and node.attr not in own
    ]
    assert not private, f"{module} uses private names: {private}"


def runtime_imports(path: Path) -> set[str]:
    """The package modules that importing *path* runs, function-local imports included.

    Imports under ``if TYPE_CHECKING:`` never run and are left out; importing
    ``a.b.c`` also runs the ``__init__`` of the packages above it.
    """
    module = module_name(path)
    checking_only = {
        inner.lineno
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for statement in node.body
        for inner in ast.walk(statement)
        if isinstance(inner, ast.Import | ast.ImportFrom)
    }
    found: set[str] = set()
    for line, target, names in imports_of(path):
        if line in checking_only:
            continue
        found.update(f"{target}.{name}" for name in names if f"{target}.{name}" in MODULE_NAMES)
        found.add(target)
        parts = target.split(".")
        for end in range(1, len(parts)):
            package = ".".join(parts[:end])
            if not module.startswith(package + "."):
                found.add(package)
    found.discard(module)
    return found & MODULE_NAMES


MODULE_NAMES = {module_name(path) for path in MODULES}


def import_cycles() -> list[list[str]]:
    """Every group of modules that import each other, directly or through others."""
    graph = {module_name(path): runtime_imports(path) for path in MODULES}
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        order[module] = low[module] = len(order)
        stack.append(module)
        for target in graph[module]:
            if target not in order:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], order[target])
        if low[module] == order[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(graph):
        if module not in order:
            visit(module)
    return cycles


def test_no_module_imports_itself_through_others() -> None:
    # A cycle hidden in a function-local import still ties the modules together:
    # neither can be read, tested or moved without the other.
    assert import_cycles() == []


def test_only_the_session_writes_its_state() -> None:
    # Session (wsgisession/sessions.py) is the one writer of its state; a backend
    # returns a new record rather than change one it handed over. Outside
    # sessions.py: no assignment to another object's private attribute, and fields
    # of a SessionState only on one this function just made (object.__new__).
    records = {"created", "issued", "lifetime", "had_cookie", "stale", "sid", "key", "raw",
               "payload", "known"}  # fmt: skip
    found = []
    for path in MODULES:
        if module_name(path) == "wsgisession.sessions":
            continue
        for function in ast.walk(ast.parse(path.read_text())):
            if not isinstance(function, ast.FunctionDef | ast.Module):
                continue
            made = {
                target.id
                for node in ast.walk(function)
                if isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Call)
                and ast.unparse(node.value) == "_new_record(SessionState)"
                for target in node.targets
                if isinstance(target, ast.Name)
            }
            for node in ast.walk(function):
                if not isinstance(node, ast.Attribute) or not isinstance(node.ctx, ast.Store):
                    continue
                owner = node.value.id if isinstance(node.value, ast.Name) else None
                if owner in ("self", "cls"):
                    continue
                private = node.attr.startswith("_") and not node.attr.startswith("__")
                if private or (node.attr in records and owner not in made):
                    found.append(f"{module_name(path)} line {node.lineno}: {ast.unparse(node)}")
    assert sorted(set(found)) == []
