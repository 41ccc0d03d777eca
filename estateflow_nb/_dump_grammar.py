"""What a SQL dump may say: CREATE TABLE with plain column definitions, INSERT ... VALUES of literals.

`sources` replays a dump into a private in-memory SQLite; this module decides, from the text alone and
before SQLite sees it, which statements may be replayed, so that no dump can compute anything:

- `CREATE TABLE name (column type ..., ...)` is parsed here and never run. Only the column names, their
  declared types (words and a size) and literal DEFAULTs are kept, to create a scratch table without
  constraints (a bad row must reach validation, not fail the replay). CHECK, UNIQUE, REFERENCES and
  the like are read past and not kept, since they are never evaluated; a DEFAULT that is an
  expression, a generated column or `AS SELECT` is refused.
- `INSERT [OR ...] INTO name [(columns)] VALUES (...), (...)` is run only when every value is a literal:
  a number, a string, a blob, NULL, TRUE or FALSE, or one of the shapes dump writers use for text a
  literal cannot spell: the sqlite3 shell's `replace('a\\nb','\\n',char(10))` (also nested, for "\\r"),
  newer shells' `unistr('a\\u000ab')`, and for text with NULs `CAST(X'00..' AS TEXT)` or
  `'a'||char(0)||'b'` (our D1 dumps).
  Each of these makes a value no longer than its own text, so a dump's rows are never bigger than the
  dump: no SELECT, no CTE, no cross join of VALUES lists, no other function.

The INSERT check is one regular expression with possessive quantifiers (linear, no backtracking), run
over every INSERT: C speed. Only when it refuses a statement does the slower `explain_insert` say why.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field

from ._sql import quote_name


class Refusal(Exception):
    """A statement that is not replayed: `unsafe` when it tries more than creating or inserting."""

    def __init__(self, reason: str, *, unsafe: bool) -> None:
        super().__init__(reason)
        self.unsafe = unsafe


# --- INSERT: one linear regular expression ------------------------------------------------------------

# SQLite's whitespace (Python's \s also takes characters SQLite does not), and its digits (\d takes
# other scripts' too).
_S = r"[ \t\n\f\r]*+"
_S1 = r"[ \t\n\f\r]++"
_NAME = r'(?:"(?:[^"]|"")*+"|`(?:[^`]|``)*+`|\[[^\]]*+\]|[^\W\d][\w$]*+)'
_STRING = r"'[^']*+(?:''[^']*+)*+'"
_BLOB = r"[xX]'(?:[0-9a-fA-F]{2})*+'"
_NUMBER = r"[-+]?+(?:0[xX][0-9a-fA-F]++|(?:[0-9]++(?:\.[0-9]*+)?+|\.[0-9]++)(?:[eE][-+]?+[0-9]++)?+)"
_TEXT = (
    rf"(?:{_STRING}|(?i:unistr){_S}\({_S}{_STRING}{_S}\)|(?i:cast){_S}\({_S}{_BLOB}{_S1}(?i:as){_S1}(?i:text){_S}\))"
)
_LINE_BREAK = rf"(?i:char){_S}\({_S}1[03]{_S}\)"  # char(10) and char(13): "\n" and "\r"
# Text with NULs as our D1 dumps write it ('a'||char(0)||'b'): a NUL would end the literal.
_NUL_JOINED = rf"{_STRING}(?:{_S}\|\|{_S}(?i:char){_S}\({_S}0{_S}\){_S}\|\|{_S}{_STRING})*+"
_REPLACE = rf"(?i:replace){_S}\({_S}(?>{{inner}}){_S},{_S}{_STRING}{_S},{_S}{_LINE_BREAK}{_S}\)"
_REPLACED_ONCE = _REPLACE.format(inner=_TEXT)
_REPLACED = _REPLACE.format(inner=f"{_REPLACED_ONCE}|{_TEXT}")  # the shell nests two: "\r" then "\n"
# Plain strings and numbers first: nearly every value is one.
_VALUE = rf"(?:{_NUL_JOINED}|{_NUMBER}|(?>(?i:NULL|TRUE|FALSE)\b|{_TEXT}|{_REPLACED}|{_BLOB}))"
_ROW = rf"\({_S}{_VALUE}(?:{_S},{_S}{_VALUE})*+{_S}\)"
_INSERT = re.compile(
    rf"(?:(?i:INSERT)(?:{_S1}(?i:OR){_S1}(?i:IGNORE|REPLACE|ABORT|FAIL|ROLLBACK))?+|(?i:REPLACE)){_S1}(?i:INTO){_S1}"
    rf"(?:(?P<schema>{_NAME}){_S}\.{_S})?+(?P<table>{_NAME}){_S}"
    rf"(?:\({_S}{_NAME}(?:{_S},{_S}{_NAME})*+{_S}\){_S})?+"
    rf"(?i:VALUES){_S}{_ROW}(?:{_S},{_S}{_ROW})*+{_S};{_S}"
)

# SQLite's own words for the statement kinds explain_insert names.
_QUERY_WORDS = {"SELECT": "it runs a SELECT", "WITH": "it uses a WITH clause", "UNION": "it runs a SELECT"}
_CLAUSE_WORDS = {"ON", "RETURNING", "DEFAULT", "DO", "UPDATE", "SET", "WHERE", "FROM"}
ALLOWED_CALLS = frozenset({"replace", "char", "unistr", "cast"})
_NOT_CALLS = {"VALUES", "IN", "EXISTS", "AND", "OR", "NOT", "AS", "USING"}  # words followed by "(" that call nothing


def unquote(name: str) -> str:
    """An identifier as SQLite names it: "a""b" -> a"b, [x] -> x, `y` -> y."""
    if name[:1] in ('"', "`"):
        return name[1:-1].replace(name[0] * 2, name[0])
    if name[:1] == "[":
        return name[1:-1]
    return name


def insert_table(statement: str) -> str:
    """The table a literal INSERT writes to; Refusal when `statement` is anything more."""
    match = _INSERT.fullmatch(statement)
    if match is None:
        reason, unsafe = explain_insert(statement)
        raise Refusal(reason, unsafe=unsafe)
    schema = unquote(match["schema"]) if match["schema"] else "main"
    if schema.lower() != "main":
        raise Refusal(f"it uses database {schema!r}", unsafe=True)
    table = unquote(match["table"])
    if table.lower().startswith("sqlite_"):
        raise Refusal(f"it writes SQLite's own table {table}", unsafe=True)
    return table


def explain_insert(statement: str) -> tuple[str, bool]:
    """Why the INSERT check refused `statement`: (reason, unsafe). Only ever on the way to an error.

    SQLite's parser, with an authorizer that denies everything, tells a syntax error (a typo: not
    unsafe, and said in SQLite's words) from a statement that parses; the tokens of one that parses
    then say what it tries. Nothing is ever run: the authorizer fails the statement as it is prepared.
    """
    probe = sqlite3.connect(":memory:")
    try:
        probe.setlimit(sqlite3.SQLITE_LIMIT_EXPR_DEPTH, 100)
        probe.set_authorizer(lambda *_: sqlite3.SQLITE_DENY)
        probe.execute(statement)
    except sqlite3.Error as error:
        message = str(error)
        if "syntax error" in message or "unrecognized token" in message or "incomplete input" in message:
            return message, False
    finally:
        probe.close()
    return _what_it_tries(tokens(statement)), True


def _what_it_tries(words: list[str]) -> str:
    start = _after_head(words)
    for i, token in enumerate(words[start:], start):
        upper = token.upper()
        if upper in _QUERY_WORDS:
            return _QUERY_WORDS[upper]
        called = _is_word(token) and i + 1 < len(words) and words[i + 1] == "("
        if called and token.lower() not in ALLOWED_CALLS and upper not in _NOT_CALLS:
            return f"it calls {token}()"
        if upper in _CLAUSE_WORDS:
            return f"it is not a plain INSERT ... VALUES ({upper})"
        if token in ("-", "+") and _NUMBER_TOKEN.fullmatch(words[i + 1] if i + 1 < len(words) else ""):
            continue  # a signed number
        if token in ("||", "+", "-", "*", "/", "%", "<<", ">>", "&", "|", "=", "==", "<", ">", "<=", ">=", "!=", "<>"):
            return f"it computes values (with {token})"
    return "it is not an INSERT of literal values (replace(), char(), unistr() and CAST only as dump writers use them)"


def _after_head(words: list[str]) -> int:
    """Where an INSERT's values part begins: past INTO, the table's name and its list of columns."""
    upper = [word.upper() for word in words]
    if "INTO" not in upper:
        return 0
    at = upper.index("INTO") + 2  # the table's name
    if at < len(words) and words[at] == ".":
        at += 2
    if at < len(words) and words[at] == "(":
        at = words.index(")", at) + 1 if ")" in words[at:] else at
    return at


_ESCAPE = re.compile(r"\\(?:\\|u?([0-9a-fA-F]{4})|\+([0-9a-fA-F]{6})|U([0-9a-fA-F]{8}))")


def unistr(text: str | None) -> str | None:
    """SQLite's unistr() (3.44 and later), for older SQLite: newer shells write text with line breaks as
    unistr('a\\u000ab'). Escapes are \\XXXX, \\uXXXX, \\+XXXXXX, \\UXXXXXXXX and \\\\; the result is
    never longer than the text."""
    if text is None:
        return None

    def one(match: re.Match[str]) -> str:
        digits = match[1] or match[2] or match[3]
        if digits is None:
            return "\\"
        code = int(digits, 16)
        if code > 0x10FFFF:
            raise ValueError(f"invalid Unicode escape in unistr(): {match[0]}")
        return chr(code)

    if "\\" in _ESCAPE.sub("", text):
        raise ValueError("invalid Unicode escape in unistr()")
    return _ESCAPE.sub(one, text)


# --- CREATE TABLE: parsed here, never run -----------------------------------------------------------

_TOKEN = re.compile(
    r"""\s+|--[^\n]*|/\*.*?(?:\*/|\Z)|(?P<token>'[^']*(?:''[^']*)*'|"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\]"""
    r"""|[xX]'[0-9a-fA-F]*'|0[xX][0-9a-fA-F]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[^\W\d][\w$]*"""
    r"""|<=|>=|<>|!=|==|\|\||<<|>>|.)""",
    re.S,
)
_CONSTRAINTS = {"CONSTRAINT", "PRIMARY", "NOT", "NULL", "UNIQUE", "CHECK", "DEFAULT", "COLLATE", "REFERENCES"}
_TABLE_CONSTRAINTS = {"CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"}
_LITERAL_WORDS = {"NULL", "TRUE", "FALSE", "CURRENT_TIME", "CURRENT_DATE", "CURRENT_TIMESTAMP"}
_TYPE_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_TOKEN = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|0[xX][0-9a-fA-F]+")


def tokens(statement: str) -> list[str]:
    return [m["token"] for m in _TOKEN.finditer(statement) if m["token"]]


def _is_word(token: str) -> bool:
    return bool(token) and (token[0].isalpha() or token[0] == "_")


def _is_name(token: str) -> bool:
    return _is_word(token) or token[:1] in ('"', "`", "[")


@dataclass
class Column:
    name: str
    type: str = ""
    default: str = ""  # a literal, as SQL


@dataclass
class Table:
    """A dump's CREATE TABLE as far as the replay needs it."""

    name: str
    columns: list[Column] = field(default_factory=list)

    def scratch_ddl(self) -> str:
        """The table to replay rows into: the same names, types and literal defaults, no constraints."""
        definitions = ", ".join(
            " ".join(filter(None, (quote_name(c.name), c.type, f"DEFAULT {c.default}" if c.default else "")))
            for c in self.columns
        )
        return f"CREATE TABLE {quote_name(self.name)} ({definitions})"


class _Cursor:
    def __init__(self, words: list[str]) -> None:
        self.words = words
        self.at = 0

    def peek(self, ahead: int = 0) -> str:
        where = self.at + ahead
        return self.words[where] if where < len(self.words) else ""

    def take(self) -> str:
        token = self.peek()
        if not token:
            raise Refusal("incomplete input", unsafe=False)
        self.at += 1
        return token

    def accept(self, *words: str) -> bool:
        """Take the next tokens if they are `words` (case-insensitively)."""
        if [self.peek(i).upper() for i in range(len(words))] != list(words):
            return False
        self.at += len(words)
        return True

    def expect(self, word: str) -> None:
        if not self.accept(word):
            raise self.syntax()

    def syntax(self) -> Refusal:
        return Refusal(f'near "{self.peek() or "end"}": syntax error', unsafe=False)

    def skip_balanced(self) -> None:
        """Past a parenthesised group (CHECK (...), REFERENCES t(a)): read, never evaluated."""
        self.expect("(")
        depth = 1
        while depth:
            token = self.take()
            depth += {"(": 1, ")": -1}.get(token, 0)


def create_table(statement: str) -> Table:
    """The table a dump's CREATE TABLE defines; Refusal when it is more than plain column definitions."""
    cursor = _Cursor(tokens(statement))
    cursor.expect("CREATE")
    cursor.expect("TABLE")
    cursor.accept("IF", "NOT", "EXISTS")
    name = cursor.take()
    if cursor.accept("."):
        if unquote(name).lower() != "main":
            raise Refusal(f"it uses database {unquote(name)!r}", unsafe=True)
        name = cursor.take()
    if not _is_name(name):
        raise Refusal(f'near "{name}": syntax error', unsafe=False)
    if cursor.peek().upper() == "AS":
        raise Refusal("it creates a table from a SELECT", unsafe=True)
    table = Table(unquote(name))
    cursor.expect("(")
    while True:
        if cursor.peek().upper() in _TABLE_CONSTRAINTS:
            _skip_table_constraint(cursor)
        else:
            table.columns.append(_column(cursor))
        if cursor.accept(")"):
            break
        cursor.expect(",")
    while cursor.peek() not in (";", ""):  # table options: WITHOUT ROWID, STRICT; not kept
        if not (cursor.accept("WITHOUT", "ROWID") or cursor.accept("STRICT") or cursor.accept(",")):
            raise cursor.syntax()
    cursor.accept(";")
    if cursor.peek():
        raise cursor.syntax()
    return table


def _column(cursor: _Cursor) -> Column:
    name = cursor.take()
    if not _is_name(name):
        raise Refusal(f'near "{name}": syntax error', unsafe=False)
    column = Column(unquote(name))
    words = []
    while _TYPE_WORD.fullmatch(cursor.peek()) and cursor.peek().upper() not in _CONSTRAINTS | {"GENERATED", "AS"}:
        words.append(cursor.take())
    if words and cursor.accept("("):
        size = [cursor.take()]
        while not cursor.accept(")"):
            size.append(cursor.take())
        if not re.fullmatch(r"[-+]?\d+(?:,[-+]?\d+)?", "".join(size)):
            raise Refusal(f"the type {' '.join(words)}({''.join(size)}) is not a type name and a size", unsafe=False)
        words[-1] += f"({''.join(size)})"
    column.type = " ".join(words)
    while cursor.peek() not in (",", ")", ""):
        _column_constraint(cursor, column)
    return column


def _column_constraint(cursor: _Cursor, column: Column) -> None:
    word = cursor.take().upper()
    if word == "CONSTRAINT":
        cursor.take()
    elif word == "DEFAULT":
        column.default = _literal_default(cursor)
    elif word in ("CHECK", "REFERENCES"):
        if word == "REFERENCES":
            cursor.take()
        if word == "CHECK" or cursor.peek() == "(":
            cursor.skip_balanced()
    elif word in ("GENERATED", "AS"):
        raise Refusal(f"column {column.name} is generated from an expression", unsafe=True)
    elif word == "COLLATE" or (word == "ON" and cursor.accept("CONFLICT")):
        cursor.take()
    elif word not in ("PRIMARY", "KEY", "NOT", "NULL", "UNIQUE", "ASC", "DESC", "AUTOINCREMENT") and not (
        _is_word(word) and word in _FOREIGN_KEY_WORDS
    ):
        raise Refusal(f'near "{cursor.words[cursor.at - 1]}": syntax error', unsafe=False)


# Words of a REFERENCES clause after its table: ON DELETE CASCADE, MATCH FULL, DEFERRABLE ...
_FOREIGN_KEY_WORDS = {
    "ON",
    "DELETE",
    "UPDATE",
    "SET",
    "CASCADE",
    "RESTRICT",
    "NO",
    "ACTION",
    "MATCH",
    "DEFERRABLE",
    "INITIALLY",
    "DEFERRED",
    "IMMEDIATE",
    "SIMPLE",
    "PARTIAL",
    "FULL",
}


def _literal_default(cursor: _Cursor) -> str:
    """A DEFAULT's value as SQL, which must be a literal: an expression may call anything."""
    wrapped = cursor.accept("(")
    sign = cursor.take() if cursor.peek() in ("-", "+") else ""
    token = cursor.take()
    literal = (
        token[:1] == "'"
        or (token[:2].lower() == "x'" and not sign)
        or _NUMBER_TOKEN.fullmatch(token)
        or (token.upper() in _LITERAL_WORDS and not sign)
    )
    if not literal or (wrapped and not cursor.accept(")")) or cursor.peek() == "(":
        raise Refusal(f"the DEFAULT of a column is an expression ({sign}{token} ...), not a literal", unsafe=True)
    return f"{sign}{token}"


def _skip_table_constraint(cursor: _Cursor) -> None:
    """Past PRIMARY KEY (a, b), UNIQUE (...), CHECK (...), FOREIGN KEY (...) REFERENCES t(...) ...: kept by
    nothing, since the scratch table has no constraints."""
    while cursor.peek() not in (",", ")", ""):
        if cursor.peek() == "(":
            cursor.skip_balanced()
        else:
            cursor.take()
