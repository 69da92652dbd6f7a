"""Static reading of a cell's code: which literals it sets, which names it reads and binds,
which calls it makes (with their literal arguments) and which objects it fits.

Pure ``ast``: no execution, no IPython. The tracker combines this with what the
namespace looked like before and after the cell (see ``inference.py``).
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass, field


MAX_PARAM_REPR = 500
MAX_PATH_LITERAL = 1024


FIT_METHODS = frozenset({"fit", "fit_transform", "fit_predict", "partial_fit"})


@dataclass
class CallSite:
    """One call in the cell: ``callee`` as dotted parts (``("plt", "scatter")``; ``"[]"``/``"()"``
    stand for a subscript or call inside the chain; empty when the chain does not start at a name)."""

    callee: tuple[str, ...]
    keywords: dict[str, object] = field(default_factory=dict)  # literal keyword arguments
    positional: dict[int, object] = field(default_factory=dict)  # literal positional arguments by index
    names: list[str] = field(default_factory=list)  # plain names passed as arguments
    parent: int | None = None  # index in ``calls`` of the nearest enclosing call


@dataclass
class CellAnalysis:
    """What the code of one cell says about itself."""

    params: dict[str, object] = field(default_factory=dict)  # top-level literal assignments
    loads: set[str] = field(default_factory=set)  # names read
    free: set[str] = field(default_factory=set)  # names read before the cell binds them: its inputs
    stores: set[str] = field(default_factory=set)  # names bound by assignment
    loop_targets: set[str] = field(default_factory=set)  # for-loop / with-as names
    strings: list[str] = field(default_factory=list)  # path-like string literals, in order
    calls: list[CallSite] = field(default_factory=list)  # calls in the cell's own scope, outer first
    fitted: list[str] = field(default_factory=list)  # dotted names whose fit/partial_fit/... is called
    bound_from: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> callee it was assigned from
    last: ast.expr | None = None  # the final expression statement: what the cell displays
    augmented: set[str] = field(default_factory=set)  # ``x += ...`` targets: read and maybe changed in place
    top_stores: set[str] = field(default_factory=set)  # bound by top-level assignments: all ran if the cell did


def _literal(node: ast.AST) -> tuple[bool, object]:
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None
    if isinstance(value, bytes) or len(repr(value)) > MAX_PARAM_REPR:
        return False, None
    return True, value


def _assigned_literals(tree: ast.Module) -> dict[str, object]:
    found: dict[str, object] = {}
    for stmt in tree.body:
        targets: list[ast.AST]
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets, value = [stmt.target], stmt.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                ok, lit = _literal(value)
                if ok:
                    found[target.id] = lit
            elif isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple):
                if len(target.elts) == len(value.elts):
                    for t, v in zip(target.elts, value.elts):
                        ok, lit = _literal(v)
                        if ok and isinstance(t, ast.Name):
                            found[t.id] = lit
    return found


class _Names(ast.NodeVisitor):
    """Names read and bound in the cell's own scope (not inside def/class/lambda)."""

    def __init__(self, result: CellAnalysis) -> None:
        self.r = result

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.r.loads.add(node.id)
        else:
            self.r.stores.add(node.id)

    def _targets(self, target: ast.AST) -> None:
        for n in ast.walk(target):
            if isinstance(n, ast.Name):
                self.r.loop_targets.add(n.id)

    def visit_For(self, node: ast.For) -> None:
        self._targets(node.target)
        self.generic_visit(node)

    visit_AsyncFor = visit_For

    def visit_With(self, node: ast.With) -> None:
        for item in node.items:
            if item.optional_vars is not None:
                self._targets(item.optional_vars)
        self.generic_visit(node)

    visit_AsyncWith = visit_With

    def visit_FunctionDef(self, node: ast.AST) -> None:
        self.r.loop_targets.add(node.name)  # a def binds a name that is never a metric
        for d in getattr(node, "decorator_list", []):
            self.visit(d)

    visit_AsyncFunctionDef = visit_FunctionDef
    visit_ClassDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        return None

    def _comprehension(self, node: ast.AST) -> None:
        # Comprehension variables do not leak; only what they iterate over is read.
        comp_vars: set[str] = set()
        for gen in node.generators:  # type: ignore[attr-defined]
            self._loads_except(gen.iter, comp_vars)
            comp_vars |= {n.id for n in ast.walk(gen.target) if isinstance(n, ast.Name)}
            for cond in gen.ifs:
                self._loads_except(cond, comp_vars)
        for part in ("elt", "key", "value"):
            sub = getattr(node, part, None)
            if sub is not None:
                self._loads_except(sub, comp_vars)

    def _loads_except(self, node: ast.AST, skip: set[str]) -> None:
        for n in ast.walk(node):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in skip:
                self.r.loads.add(n.id)

    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _comprehension

    def visit_Import(self, node: ast.AST) -> None:
        for alias in node.names:  # type: ignore[attr-defined]
            self.r.loop_targets.add((alias.asname or alias.name).split(".")[0])

    visit_ImportFrom = visit_Import


def chain(node: ast.AST) -> tuple[str, ...]:
    """``a.b[0].c()`` as ``("a", "b", "[]", "c", "()")``; empty unless the chain starts at a name."""
    parts: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Subscript):
            parts.append("[]")
            node = node.value
        elif isinstance(node, ast.Call):
            parts.append("()")
            node = node.func
        elif isinstance(node, ast.Name):
            parts.append(node.id)
            return tuple(reversed(parts))
        else:
            return ()


class _Calls(ast.NodeVisitor):
    """Calls, fitted objects and call results bound to names, in the cell's own scope."""

    def __init__(self, result: CellAnalysis) -> None:
        self.r = result
        self.stack: list[int] = []

    def visit_Call(self, node: ast.Call) -> None:
        site = CallSite(callee=chain(node.func), parent=self.stack[-1] if self.stack else None)
        for i, arg in enumerate(node.args):
            if isinstance(arg, ast.Starred):
                break  # later positions are unknown
            self._argument(site, i, arg)
        for kw in node.keywords:
            if kw.arg is not None:
                self._argument(site, kw.arg, kw.value)
        fitted = site.callee[:-1]
        if len(site.callee) > 1 and site.callee[-1] in FIT_METHODS and "()" not in fitted and "[]" not in fitted:
            self.r.fitted.append(".".join(fitted))
        self.r.calls.append(site)
        self.stack.append(len(self.r.calls) - 1)
        self.generic_visit(node)
        self.stack.pop()

    @staticmethod
    def _argument(site: CallSite, key: int | str, value: ast.AST) -> None:
        if isinstance(value, ast.Name):
            site.names.append(value.id)
            return
        ok, lit = _literal(value)
        if ok:
            if isinstance(key, str):
                site.keywords[key] = lit
            else:
                site.positional[key] = lit

    def visit_Assign(self, node: ast.Assign) -> None:
        if isinstance(node.value, ast.Call):
            callee = chain(node.value.func)
            for target in node.targets:
                if isinstance(target, ast.Name) and callee:
                    self.r.bound_from[target.id] = callee
        self.generic_visit(node)

    def _skip(self, node: ast.AST) -> None:
        return None  # bodies of def/class/lambda do not run as the cell's own code

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = visit_Lambda = _skip


def _path_literals(tree: ast.Module) -> list[str]:
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            s = node.value
            if 0 < len(s) <= MAX_PATH_LITERAL and "\n" not in s and "\x00" not in s:
                if s not in out:
                    out.append(s)
    return out


def analyse(source: str) -> CellAnalysis:
    """Read ``source`` (plain Python, IPython syntax already transformed)."""
    tree = ast.parse(source)
    result = CellAnalysis()
    result.params = _assigned_literals(tree)
    _Calls(result).visit(tree)
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        result.last = tree.body[-1].value
    bound: set[str] = set()
    for stmt in tree.body:  # statement order: `df = df.dropna()` reads df before binding it
        part = CellAnalysis()
        _Names(part).visit(stmt)
        result.free |= part.loads - bound - part.loop_targets
        bound |= part.stores | part.loop_targets
        result.loads |= part.loads
        result.stores |= part.stores
        result.loop_targets |= part.loop_targets
    result.strings = _path_literals(tree)
    result.augmented, result.top_stores = _assignments(tree)
    return result


def _assignments(tree: ast.Module) -> tuple[set[str], set[str]]:
    """``(augmented, top_stores)``: names of ``x += ...`` anywhere in the cell's own scope, and
    names bound by top-level assignments (``n = 3`` over an equal ``n`` keeps the object's id)."""
    augmented: set[str] = set()
    todo = list(tree.body)
    while todo:  # not into def, class or lambda: their names are theirs
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            augmented.add(node.target.id)
        todo.extend(ast.iter_child_nodes(node))
    top: set[str] = set()
    for stmt in tree.body:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else (
            [stmt.target] if isinstance(stmt, (ast.AnnAssign, ast.AugAssign)) and getattr(stmt, "value", None) else [])
        for target in targets:
            top |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return augmented, top


def existing_files(strings: list[str], cwd: str | None = None) -> list[str]:
    """The string literals that name regular files on disk."""
    base = cwd or os.getcwd()
    found = []
    for s in strings:
        path = os.path.join(base, os.path.expanduser(s))
        try:
            if os.path.isfile(path):
                found.append(s)
        except (OSError, ValueError):
            continue
    return found
