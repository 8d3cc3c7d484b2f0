"""``${{ }}`` expressions: a small parser and evaluator, never Python's ``eval``.

Grammar (lowest precedence first)::

    expr    := and ("or" | "||") and ...
    and     := not ("and" | "&&") not ...
    not     := ("not" | "!") not | compare
    compare := primary [("==" | "!=" | "<" | "<=" | ">" | ">=" | "in") primary]
    primary := literal | path | "(" expr ")"
    path    := ("inputs" | "steps") ("." NAME | "[" INT | STRING "]")*
    literal := number | 'string' | "string" | true | false | null

A path that leads nowhere evaluates to ``null`` (as in GitHub Actions), so ``when``
conditions on optional outputs need no guards.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ExpressionError

__all__ = ["Expr", "Template", "parse", "parse_template", "render"]

ROOTS = ("inputs", "steps")
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<num>-?\d+(?:\.\d+)?)
    | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<name>[A-Za-z_][A-Za-z0-9_-]*)
    | (?P<op>==|!=|<=|>=|&&|\|\||[<>!().\[\]])
    )""",
    re.VERBOSE,
)
_WORDS = {"true": True, "false": False, "null": None}
_COMPARE = ("==", "!=", "<", "<=", ">", ">=", "in")
_OPENER = "${{"
_CLOSER = "}}"


@dataclass(frozen=True)
class Expr:
    """A parsed expression: a tree of tuples, evaluated by `evaluate`."""

    text: str
    tree: tuple[Any, ...]

    def evaluate(self, scope: Mapping[str, Any]) -> Any:
        return _eval(self.tree, scope)

    def paths(self) -> Iterator[tuple[tuple[Any, ...], int]]:
        """Every path the expression reads, with its 1-based column."""
        yield from _paths(self.tree)


@dataclass(frozen=True)
class _Token:
    kind: str
    value: str
    column: int


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            col = pos + 1 + (len(text[pos:]) - len(text[pos:].lstrip()))
            raise ExpressionError(text, col, f"unexpected character {text[col - 1]!r}")
        kind = match.lastgroup or "op"
        value = match.group(kind)
        out.append(_Token(kind, value, match.start(kind) + 1))
        pos = match.end()
    out.append(_Token("end", "", len(text) + 1))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def fail(self, token: _Token, reason: str) -> ExpressionError:
        return ExpressionError(self.text, token.column, reason)

    def is_op(self, *values: str) -> bool:
        token = self.peek()
        return token.kind in ("op", "name") and token.value in values

    def parse(self) -> tuple[Any, ...]:
        if self.peek().kind == "end":
            raise self.fail(self.peek(), "empty expression")
        tree = self.or_()
        token = self.peek()
        if token.kind != "end":
            raise self.fail(token, f"unexpected {token.value!r}")
        return tree

    def or_(self) -> tuple[Any, ...]:
        tree = self.and_()
        while self.is_op("or", "||"):
            self.take()
            tree = ("or", tree, self.and_())
        return tree

    def and_(self) -> tuple[Any, ...]:
        tree = self.not_()
        while self.is_op("and", "&&"):
            self.take()
            tree = ("and", tree, self.not_())
        return tree

    def not_(self) -> tuple[Any, ...]:
        if self.is_op("not", "!"):
            self.take()
            return ("not", self.not_())
        return self.compare()

    def compare(self) -> tuple[Any, ...]:
        left = self.primary()
        if self.is_op(*_COMPARE):
            op = self.take().value
            return ("cmp", op, left, self.primary())
        return left

    def primary(self) -> tuple[Any, ...]:
        token = self.take()
        if token.kind == "num":
            number = float(token.value) if "." in token.value else int(token.value)
            return ("lit", number)
        if token.kind == "str":
            return ("lit", _unquote(token.value))
        if token.kind == "name":
            if token.value in _WORDS:
                return ("lit", _WORDS[token.value])
            if token.value in ROOTS:
                return self.path(token)
            hint = "use inputs.X or steps.ID.output.Y"
            raise self.fail(token, f"unknown name {token.value!r}; {hint}")
        if token.kind == "op" and token.value == "(":
            tree = self.or_()
            closing = self.take()
            if closing.value != ")":
                raise self.fail(closing, "expected ')'")
            return tree
        what = "end of expression" if token.kind == "end" else repr(token.value)
        raise self.fail(token, f"unexpected {what}")

    def path(self, root: _Token) -> tuple[Any, ...]:
        parts: list[Any] = [root.value]
        while self.is_op(".", "["):
            if self.take().value == ".":
                name = self.take()
                if name.kind not in ("name", "num"):
                    raise self.fail(name, "expected a name after '.'")
                parts.append(name.value)
            else:
                index = self.take()
                if index.kind == "num" and "." not in index.value:
                    parts.append(int(index.value))
                elif index.kind == "str":
                    parts.append(_unquote(index.value))
                else:
                    raise self.fail(index, "expected an integer or a string in '[ ]'")
                if self.take().value != "]":
                    raise self.fail(self.tokens[self.i - 1], "expected ']'")
        return ("path", tuple(parts), root.column)


def _unquote(raw: str) -> str:
    return re.sub(r"\\(.)", r"\1", raw[1:-1])


def parse(text: str) -> Expr:
    """Parse ``text`` (without the ``${{ }}``); raises `ExpressionError`."""
    return Expr(text, _Parser(text).parse())


def _eval(tree: tuple[Any, ...], scope: Mapping[str, Any]) -> Any:
    kind = tree[0]
    if kind == "lit":
        return tree[1]
    if kind == "path":
        value: Any = scope
        for part in tree[1]:
            if isinstance(value, Mapping):
                value = value.get(part)
            elif isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
                value = value[part]
            else:
                return None
        return value
    if kind == "not":
        return not _eval(tree[1], scope)
    if kind == "and":
        return bool(_eval(tree[1], scope)) and bool(_eval(tree[2], scope))
    if kind == "or":
        return bool(_eval(tree[1], scope)) or bool(_eval(tree[2], scope))
    op, left, right = tree[1], _eval(tree[2], scope), _eval(tree[3], scope)
    try:
        if op == "==":
            return bool(left == right)
        if op == "!=":
            return bool(left != right)
        if op == "in":
            return bool(right is not None and left in right)
        if op == "<":
            return bool(left < right)
        if op == "<=":
            return bool(left <= right)
        if op == ">":
            return bool(left > right)
        return bool(left >= right)
    except TypeError:
        # Ordering null or mixed types is false rather than an error at run time.
        return False


def _paths(tree: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], int]]:
    if tree[0] == "path":
        yield tree[1], tree[2]
    elif tree[0] != "lit":
        for child in tree[1:]:
            if isinstance(child, tuple):
                yield from _paths(child)


@dataclass(frozen=True)
class Template:
    """A string value with ``${{ }}`` parts; ``whole`` when it is one expression only
    (then it evaluates to the raw value, not its text)."""

    parts: tuple[str | Expr, ...]
    offsets: tuple[int, ...]

    @property
    def whole(self) -> bool:
        return len(self.parts) == 1 and isinstance(self.parts[0], Expr)

    def render(self, scope: Mapping[str, Any]) -> Any:
        if self.whole:
            expr = self.parts[0]
            assert isinstance(expr, Expr)
            return expr.evaluate(scope)
        out = []
        for part in self.parts:
            if isinstance(part, Expr):
                value = part.evaluate(scope)
                out.append("" if value is None else str(value))
            else:
                out.append(part)
        return "".join(out)

    def exprs(self) -> Iterator[tuple[Expr, int]]:
        """Each expression with the 0-based offset of its text in the string."""
        for part, offset in zip(self.parts, self.offsets, strict=True):
            if isinstance(part, Expr):
                yield part, offset


def parse_template(text: str) -> Template | None:
    """The template in ``text``, or None when it has no ``${{``; raises
    `ExpressionError` with the column within ``text``."""
    if _OPENER not in text:
        return None
    parts: list[str | Expr] = []
    offsets: list[int] = []
    pos = 0
    while pos < len(text):
        start = text.find(_OPENER, pos)
        if start < 0:
            parts.append(text[pos:])
            offsets.append(pos)
            break
        if start > pos:
            parts.append(text[pos:start])
            offsets.append(pos)
        end = text.find(_CLOSER, start)
        if end < 0:
            raise ExpressionError(text, start + 1, "'${{' without a closing '}}'")
        inner = start + len(_OPENER)
        try:
            parts.append(parse(text[inner:end]))
        except ExpressionError as e:
            raise ExpressionError(text, inner + e.column, e.reason) from e
        offsets.append(inner)
        pos = end + len(_CLOSER)
    exprs = [(p, o) for p, o in zip(parts, offsets, strict=True) if isinstance(p, Expr)]
    if len(exprs) == 1 and all(isinstance(p, Expr) or not p.strip() for p in parts):
        # "${{ x }}" alone is the value itself (a number stays a number).
        return Template((exprs[0][0],), (exprs[0][1],))
    return Template(tuple(parts), tuple(offsets))


def render(value: Any, scope: Mapping[str, Any]) -> Any:
    """``value`` with every string template in it (nested in lists and mappings)
    evaluated against ``scope``."""
    if isinstance(value, str):
        template = parse_template(value)
        return value if template is None else template.render(scope)
    if isinstance(value, Mapping):
        return {k: render(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, scope) for v in value]
    return value
