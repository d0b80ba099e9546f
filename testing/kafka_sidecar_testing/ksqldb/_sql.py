"""The ksqlDB statement subset the test server understands, parsed into frozen statements.

Covered: ``CREATE [OR REPLACE] STREAM|TABLE [IF NOT EXISTS] name (cols) WITH (...)``,
``CREATE STREAM|TABLE [IF NOT EXISTS] name [WITH (...)] AS SELECT ... EMIT CHANGES``,
``DROP STREAM|TABLE [IF EXISTS] name [DELETE TOPIC]``, ``LIST|SHOW STREAMS|TABLES|QUERIES``,
``DESCRIBE name``, ``TERMINATE id`` and ``SELECT cols FROM src [WHERE a op literal [AND ...]]
[EMIT CHANGES] [LIMIT n]``. Identifiers are upper-cased unless back-quoted, as in ksqlDB.
Anything else is a :class:`SqlError` (ksqlDB answers those with ``statement_error`` 40001).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<quoted>`[^`]*`)|(?P<num>-?\d+(?:\.\d+)?)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<op><=|>=|!=|<>|[=<>(),;*.]))"
)
PSEUDO_COLUMNS = ("ROWTIME", "ROWPARTITION", "ROWOFFSET")


class SqlError(Exception):
    """The statement is outside the subset or malformed; ``str()`` is ksqlDB-style text."""


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str
    start: int

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else self.text


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str
    key: bool = False


@dataclass(frozen=True, slots=True)
class Predicate:
    column: str
    op: str
    value: object


@dataclass(frozen=True, slots=True)
class Select:
    columns: tuple[str, ...] | None  # None: SELECT *; a '*' item stands for every source column
    source: str
    where: tuple[Predicate, ...] = ()
    emit_changes: bool = False
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class CreateSource:
    kind: str  # STREAM | TABLE
    name: str
    if_not_exists: bool
    or_replace: bool
    columns: tuple[Column, ...]
    properties: dict[str, str] = field(default_factory=dict)
    as_select: Select | None = None


@dataclass(frozen=True, slots=True)
class DropSource:
    kind: str
    name: str
    if_exists: bool
    delete_topic: bool


@dataclass(frozen=True, slots=True)
class ListThings:
    what: str  # STREAMS | TABLES | QUERIES


@dataclass(frozen=True, slots=True)
class Describe:
    name: str


@dataclass(frozen=True, slots=True)
class Terminate:
    query_id: str


Statement = CreateSource | DropSource | ListThings | Describe | Terminate | Select


@dataclass(frozen=True, slots=True)
class Parsed:
    text: str
    statement: Statement


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        if text.startswith("--", pos):
            end = text.find("\n", pos)
            pos = len(text) if end < 0 else end + 1
            continue
        match = _TOKEN.match(text, pos)
        if match is None:
            raise SqlError(f"line 1:{pos + 1}: Syntax Error: unexpected character {text[pos:].strip()[:1]!r}")
        kind = match.lastgroup or "op"
        tokens.append(Token(kind, match.group(kind), match.start(kind)))
        pos = match.end()
    return tokens


def split_statements(text: str) -> list[tuple[str, list[Token]]]:
    """Statements of a request with their text (ending in ';' as ksqlDB echoes it)."""
    out: list[tuple[str, list[Token]]] = []
    current: list[Token] = []
    start = 0
    for token in tokenize(text):
        if not current:
            start = token.start
        if token.text == ";":
            if current:
                out.append((text[start : token.start].strip() + ";", current))
            current = []
            continue
        current.append(token)
    if current:
        out.append((text[start:].strip() + ";", current))
    return out


def parse(text: str) -> list[Parsed]:
    return [Parsed(stmt_text, _Parser(tokens).statement()) for stmt_text, tokens in split_statements(text)]


def unsupported_clause(text: str) -> str | None:
    """GROUP BY, WINDOW or JOIN in a query: the clauses the test server (and resume) do not support."""
    words = [t.upper for t in tokenize(text) if t.kind == "word"]
    for index, word in enumerate(words):
        if word == "GROUP" and index + 1 < len(words) and words[index + 1] == "BY":
            return "GROUP BY"
        if word in ("WINDOW", "JOIN"):
            return word
    return None


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    # -- primitives ------------------------------------------------------------------------------

    def peek(self, offset: int = 0) -> str:
        index = self.pos + offset
        return self.tokens[index].upper if index < len(self.tokens) else ""

    def take(self) -> Token:
        if self.pos >= len(self.tokens):
            raise SqlError("line 1:1: Syntax Error: unexpected end of statement")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def accept(self, *words: str) -> bool:
        if all(self.peek(i) == w for i, w in enumerate(words)):
            self.pos += len(words)
            return True
        return False

    def expect(self, word: str) -> None:
        if not self.accept(word):
            got = self.peek() or "end of statement"
            raise SqlError(f"line 1:{self._col()}: Syntax Error: expected {word!r}, got {got!r}")

    def _col(self) -> int:
        return (self.tokens[self.pos].start + 1) if self.pos < len(self.tokens) else 1

    def ident(self) -> str:
        token = self.take()
        if token.kind == "quoted":
            return token.text[1:-1]
        if token.kind != "word":
            raise SqlError(f"line 1:{token.start + 1}: Syntax Error: expected an identifier, got {token.text!r}")
        return token.text.upper()

    def literal(self) -> object:
        token = self.take()
        if token.kind == "str":
            return token.text[1:-1].replace("''", "'")
        if token.kind == "num":
            return float(token.text) if "." in token.text else int(token.text)
        if token.upper in ("TRUE", "FALSE"):
            return token.upper == "TRUE"
        if token.upper == "NULL":
            return None
        raise SqlError(f"line 1:{token.start + 1}: Syntax Error: expected a literal, got {token.text!r}")

    def done(self) -> None:
        if self.pos < len(self.tokens):
            token = self.tokens[self.pos]
            raise SqlError(f"line 1:{token.start + 1}: Syntax Error: unexpected {token.text!r}")

    # -- statements ------------------------------------------------------------------------------

    def statement(self) -> Statement:
        first = self.peek()
        if first == "CREATE":
            result: Statement = self.create()
        elif first == "DROP":
            result = self.drop()
        elif first in ("LIST", "SHOW"):
            self.take()
            what = self.take().upper
            if what not in ("STREAMS", "TABLES", "QUERIES"):
                raise SqlError(f"line 1:1: Syntax Error: the test server does not support LIST {what}")
            self.accept("EXTENDED")
            result = ListThings(what)
        elif first in ("DESCRIBE", "DESC"):
            self.take()
            result = Describe(self.ident())
            self.accept("EXTENDED")
        elif first == "TERMINATE":
            self.take()
            result = Terminate(self.ident())
        elif first == "SELECT":
            result = self.select()
        else:
            raise SqlError(f"line 1:1: Syntax Error: statement {first!r} is not supported by the ksqlDB test server")
        self.done()
        return result

    def create(self) -> CreateSource:
        self.expect("CREATE")
        or_replace = self.accept("OR", "REPLACE")
        kind = self.take().upper
        if kind not in ("STREAM", "TABLE"):
            raise SqlError(f"line 1:8: Syntax Error: CREATE {kind} is not supported by the ksqlDB test server")
        if_not_exists = self.accept("IF", "NOT", "EXISTS")
        name = self.ident()
        columns: tuple[Column, ...] = ()
        if self.peek() == "(":
            columns = self.column_list()
        properties = self.with_clause() if self.peek() == "WITH" else {}
        as_select = None
        if self.accept("AS"):
            as_select = self.select()
            if not as_select.emit_changes:
                raise SqlError("line 1:1: Syntax Error: a persistent query needs EMIT CHANGES")
        elif not columns:
            raise SqlError(f"line 1:1: The statement does not define any columns: {name}")
        return CreateSource(kind, name, if_not_exists, or_replace, columns, properties, as_select)

    def column_list(self) -> tuple[Column, ...]:
        self.expect("(")
        columns: list[Column] = []
        while True:
            name = self.ident()
            type_text = self.type_name()
            key = self.accept("KEY") or self.accept("PRIMARY", "KEY")
            columns.append(Column(name, type_text, key))
            if self.accept(")"):
                return tuple(columns)
            self.expect(",")

    def type_name(self) -> str:
        """A column type as ksqlDB prints it: ``STRING``, ``DECIMAL(4, 2)``, ``ARRAY<STRING>``, ``MAP<STRING, INT>``."""
        base = self.take().upper
        base = {"VARCHAR": "STRING", "INT": "INTEGER"}.get(base, base)
        if base == "DECIMAL" and self.accept("("):
            precision = self.take().text
            self.expect(",")
            scale = self.take().text
            self.expect(")")
            return f"DECIMAL({precision}, {scale})"
        if base in ("ARRAY", "MAP") and self.accept("<"):
            parts = [self.type_name()]
            while self.accept(","):
                parts.append(self.type_name())
            self.expect(">")
            return f"{base}<{', '.join(parts)}>"
        return base

    def with_clause(self) -> dict[str, str]:
        self.expect("WITH")
        self.expect("(")
        props: dict[str, str] = {}
        while True:
            key = self.take().upper
            self.expect("=")
            props[key] = str(self.literal())
            if self.accept(")"):
                return props
            self.expect(",")

    def drop(self) -> DropSource:
        self.expect("DROP")
        kind = self.take().upper
        if kind not in ("STREAM", "TABLE"):
            raise SqlError(f"line 1:6: Syntax Error: DROP {kind} is not supported by the ksqlDB test server")
        if_exists = self.accept("IF", "EXISTS")
        name = self.ident()
        delete_topic = self.accept("DELETE", "TOPIC")
        return DropSource(kind, name, if_exists, delete_topic)

    def select(self) -> Select:
        self.expect("SELECT")
        columns: list[str] = []
        while True:
            columns.append("*" if self.accept("*") else self.ident())
            if not self.accept(","):
                break
        self.expect("FROM")
        source = self.ident()
        clause = self.peek()
        if clause in ("JOIN", "INNER", "LEFT", "FULL", "WINDOW", "GROUP", "PARTITION", "HAVING"):
            raise SqlError(f"line 1:1: {clause} is not supported by the ksqlDB test server (not ksqlDB)")
        where: list[Predicate] = []
        if self.accept("WHERE"):
            while True:
                column = self.ident()
                op = self.take().text
                if op not in ("=", "!=", "<>", "<", "<=", ">", ">="):
                    raise SqlError(f"line 1:1: Syntax Error: operator {op!r} is not supported by the test server")
                where.append(Predicate(column, "!=" if op == "<>" else op, self.literal()))
                if not self.accept("AND"):
                    break
        emit = self.accept("EMIT", "CHANGES")
        limit = None
        if self.accept("LIMIT"):
            value = self.literal()
            if not isinstance(value, int) or value < 0:
                raise SqlError("line 1:1: Syntax Error: LIMIT needs a non-negative integer")
            limit = value
        return Select(None if columns == ["*"] else tuple(columns), source, tuple(where), emit, limit)
