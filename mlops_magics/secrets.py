"""Masking of secrets, the one place that decides what is one: everything this package writes
(params, tags, saved source, journal, logs, job outputs, schedules) goes through here.

Two ways a secret is found:

- by **name**, split into words (snake_case, kebab-case, camelCase, digits): a word such as
  ``password``, ``token``, ``secret``, ``auth``, ``credentials``, ``cookie``, or a pair such as
  ``api key`` / ``access key`` / ``private key``. Whole words only: ``tokenizer``,
  ``passenger_count``, ``bypass_cache`` and ``author`` are not secrets. A count of tokens is not
  a token: ``max_tokens``, ``num_tokens``, ``token_count``, ``token_limit`` are kept.
- by **value shape**: credentials in URLs (``scheme://user:***@host``, the user is kept),
  ``Bearer``/``Basic`` values, well-known key formats (AWS access key ids, ``sk-`` API keys,
  GitHub, Slack, Google, Hugging Face, GitLab tokens, JWTs, PEM private keys) and, in free text,
  ``name=value`` / ``"name": "value"`` pairs whose name is a secret.
"""

from __future__ import annotations

import ast
import logging
import re
from functools import lru_cache

MASK = "***"

# -- names ------------------------------------------------------------------------------------
_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_SECRET_WORDS = frozenset({
    "password", "passwords", "passwd", "passphrase", "pwd", "pass", "secret", "secrets",
    "token", "tokens", "credential", "credentials", "creds", "cred", "cookie", "cookies",
    "auth", "oauth", "authorization", "authentication", "authn", "authz", "bearer", "jwt",
    "apikey", "apikeys", "privkey", "signature", "sas", "otp", "totp", "mfa",
})
# words that only say "secret" next to "key"/"keys": api_key, secret_key, AWS_SECRET_ACCESS_KEY
_KEY_QUALIFIERS = frozenset({
    "api", "access", "secret", "private", "session", "signing", "encryption", "master", "account",
    "client", "ssh", "auth", "license", "subscription", "consumer", "shared", "storage", "gpg",
    "pgp", "hmac", "app", "service", "admin", "deploy", "webhook",
})
# a token count or limit is a hyperparameter, not a credential (max_tokens, token_count)
_COUNT_WORDS = frozenset({"max", "min", "num", "n", "count", "counts", "limit", "len", "length",
                          "size", "per", "total", "budget", "new"})
_GLUED_SUFFIXES = ("password", "passwd", "secret", "token", "apikey")


def _words(name: str) -> list[str]:
    return [w.lower() for w in _WORDS.findall(str(name))]


def is_secret(name: str) -> bool:
    """True when ``name`` looks like it holds a credential (matched by whole words, see module doc)."""
    return _is_secret(str(name))


@lru_cache(maxsize=4096)  # the same few names come back in every record and output
def _is_secret(name: str) -> bool:
    words = _words(name)
    if not words:
        return False
    for i, w in enumerate(words):
        if w in ("token", "tokens") and _COUNT_WORDS.intersection(words):
            continue
        if w == "pass" and i != len(words) - 1:  # db_pass yes; pass_rate, pass_through no
            continue
        if w in _SECRET_WORDS:
            return True
        if w in ("key", "keys") and i > 0 and words[i - 1] in _KEY_QUALIFIERS:
            return True
        if w.endswith(_GLUED_SUFFIXES) and not w.startswith(("max", "num")):
            return True  # dbpassword, authtoken, clientsecret
        if w.endswith("key") and w[:-3] in _KEY_QUALIFIERS:
            return True  # accesskey, secretkey, sshkey
    return False


def mask_mapping(mapping: dict[str, str]) -> dict[str, str]:
    """A copy of ``mapping`` where secret-looking keys have the value ``***`` and every other
    value has the secrets inside it masked (:func:`mask_text`), e.g. a repr of a headers dict."""
    return {k: (MASK if is_secret(k) else mask_text(v) if isinstance(v, str) else v)
            for k, v in mapping.items()}


# -- values -----------------------------------------------------------------------------------
_URL_CREDENTIALS = re.compile(r"://(?P<user>[^\s/:@'\"<>]*):[^\s/'\"<>]+@")
_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----", re.S)
_KEY_SHAPES = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    r"(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)[A-Z0-9]{16,}"  # AWS access key ids
    r"|sk-(?:proj-|ant-|live-|test-|svcacct-|admin-)?[A-Za-z0-9_-]{16,}"  # OpenAI/Anthropic style
    r"|[sr]k_(?:live|test)_[A-Za-z0-9]{10,}"  # Stripe secret/restricted keys
    r"|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"  # GitHub
    r"|glpat-[A-Za-z0-9_-]{20,}"  # GitLab
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
    r"|AIza[0-9A-Za-z_-]{30,}"  # Google API keys
    r"|hf_[A-Za-z0-9]{30,}"  # Hugging Face
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"  # JWT
    r")"
)
_KEY_MARKERS = ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "sk-", "sk_", "rk_", "gh",
                "glpat-", "xox", "AIza", "hf_", "eyJ")
# one pattern a word: a literal start is searched fast, where \b or an alternation tries every position
_SCHEME_VALUES = [(word, re.compile(word + r"(?P<sp>\s+)(?P<v>[A-Za-z0-9._~+/=-]{8,})"))
                  for word in ("Bearer", "bearer", "BEARER", "Basic", "BASIC", "Token")]
_NAME_SEP = re.compile(r"(?P<q>[\"']?)(?P<name>[A-Za-z_][\w.-]*)(?P=q)\]?\s*[:=]\s*")
_VALUE = re.compile(r"\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'"
                    r"|[^\s,;&'\"(){}\[\]<>=][^\s,;&'\"(){}\[\]<>]*(?![(\[\w.])")
_SCHEME_WORDS = ("bearer", "basic", "token")
_ROOTS = ("pass", "pwd", "secret", "token", "cred", "cookie", "auth", "bearer", "jwt", "key", "signature", "sas",
          "otp", "mfa")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def _looks_random(value: str) -> bool:
    """A credential, not a word: ``Basic Statistics`` stays, ``Basic dXNlcjpwYXNz`` does not."""
    return any(c.isdigit() or c in "._~+/=-" for c in value) or any(c.isupper() for c in value[1:])


def _mask_scheme_values(text: str) -> str:
    """``Bearer <token>``, ``Basic <base64>``, ``Token <token>`` as ``Bearer ***``."""
    for word, pattern in _SCHEME_VALUES:
        if word in text:
            def masked(m: re.Match, text: str = text) -> str:
                v, before = m["v"], text[m.start() - 1] if m.start() else " "
                if before.isalnum() or MASK in v or not _looks_random(v):
                    return m[0]
                return f"{word}{m['sp']}{MASK}"

            text = pattern.sub(masked, text)
    return text


def _name_starts(text: str) -> list[int]:
    """Where a name holding a secret-looking word may start: found from the word roots, so
    long outputs without any are passed over at the speed of one search."""
    low = text.lower()
    if len(low) != len(text):  # lower() changed offsets (rare letters): try every name
        return [m.start() for m in _NAME_SEP.finditer(text)]
    starts = set()
    for root in _ROOTS:
        at = low.find(root)
        while at >= 0:
            i = at
            while i > 0 and text[i - 1] in _NAME_CHARS:
                i -= 1
            while i < at and not (text[i].isalpha() or text[i] == "_"):
                i += 1
            starts.add(i - 1 if i > 0 and text[i - 1] in "'\"" else i)
            at = low.find(root, at + len(root))
    return sorted(starts)


def _mask_named_values(text: str) -> str:
    """Values of ``name=value``, ``name: value``, ``"name": "value"`` where the name is a secret.

    Only the value after a secret name is consumed, so ``url=http://h/?token=abc`` is scanned inside.
    """
    out, last = [], 0
    for start in _name_starts(text):
        m = _NAME_SEP.match(text, start)
        if m is None or m.start() < last or not is_secret(m["name"]):
            continue
        v = _VALUE.match(text, m.end())
        if not v or MASK in v[0] or v[0] in ("''", '""') or v[0].lower() in _SCHEME_WORDS:
            continue
        quote = v[0][0] if v[0][0] in "'\"" else ""
        out += [text[last:v.start()], quote, MASK, quote]
        last = v.end()
    return "".join(out) + text[last:] if out else text


def _mask_shapes(text: str) -> str:
    """Secrets found by their shape alone: safe on code, nothing but the secret changes."""
    if "PRIVATE KEY-----" in text:
        text = _PEM.sub(MASK, text)
    if "@" in text:
        text = _URL_CREDENTIALS.sub(lambda m: f"://{m['user']}:{MASK}@", text)
    if any(marker in text for marker in _KEY_MARKERS):  # a plain search is many times faster
        text = _KEY_SHAPES.sub(MASK, text)
    return _mask_scheme_values(text)


def mask_text(text: str) -> str:
    """``text`` with secret values replaced by ``***``: credentials in URLs (the user is kept),
    ``Bearer``/``Basic`` values, well-known key formats, and the values of ``name=value`` or
    ``"name": "value"`` pairs whose name is a secret. For anything this package writes
    (logs, error texts, job outputs); cell source goes through :func:`mask_source`."""
    if not text or not isinstance(text, str):
        return text
    return _mask_named_values(_mask_shapes(text))


class MaskFilter(logging.Filter):
    """A handler filter that masks every record it lets through: message, arguments and
    traceback (``handler.addFilter(MaskFilter())``). The record is formatted here, once."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            record.msg, record.args = mask_text(record.getMessage()), None
        except Exception:  # a record that cannot be formatted: keep only what is safe to show
            record.msg, record.args = mask_text(str(record.msg)), None
        if record.exc_info and not record.exc_text:
            import traceback

            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True


class MaskedStream:
    """A text stream that masks what is written to it (a process's ``sys.stderr`` when that
    is a log file: libraries with handlers of their own write there too)."""

    def __init__(self, raw) -> None:
        self._raw = raw

    def write(self, text: str) -> int:
        self._raw.write(mask_text(text))
        return len(text)

    def __getattr__(self, name: str):
        return getattr(self._raw, name)


# -- source -----------------------------------------------------------------------------------
def _str_constants(node: ast.AST | None) -> list[ast.Constant]:
    """The string literal ``node`` is, or the literal parts of an f-string."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value:
        return [node]
    if isinstance(node, ast.JoinedStr):
        return [v for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str) and v.value]
    return []


def _target_name(t: ast.AST) -> str:
    """``x`` of ``x = ...``, ``attr`` of ``o.attr = ...``, ``"KEY"`` of ``os.environ["KEY"] = ...``."""
    if isinstance(t, ast.Name):
        return t.id
    if isinstance(t, ast.Attribute):
        return t.attr
    if isinstance(t, ast.Subscript) and isinstance(t.slice, ast.Constant) and isinstance(t.slice.value, str):
        return t.slice.value
    return ""


def _secret_nodes(tree: ast.AST) -> list[ast.Constant]:
    found: list[ast.Constant] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    pairs = zip(t.elts, node.value.elts)  # user, password = "me", "x"
                else:
                    pairs = [(t, node.value)]
                for target, value in pairs:
                    if is_secret(_target_name(target)):
                        found += _str_constants(value)
        elif isinstance(node, ast.keyword) and node.arg and is_secret(node.arg):
            found += _str_constants(node.value)
        elif isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if isinstance(k, ast.Constant) and isinstance(k.value, str) and is_secret(k.value):
                    found += _str_constants(v)
        elif isinstance(node, ast.Call) and len(node.args) >= 2:
            # os.environ.setdefault("TOKEN", "..."), os.putenv("API_KEY", "..."), d.__setitem__
            k = node.args[0]
            if isinstance(k, ast.Constant) and isinstance(k.value, str) and is_secret(k.value):
                found += _str_constants(node.args[1])
    return found


def secret_literals(source: str) -> list[str]:
    """String literals bound to secret-looking names.

    Covers ``token = "..."``, ``f(password="...")``, ``{"api_key": "..."}``,
    ``os.environ["AWS_SECRET_ACCESS_KEY"] = "..."``, ``os.environ.setdefault("TOKEN", "...")``
    and ``os.putenv("API_KEY", "...")``.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [n.value for n in _secret_nodes(tree)]


def _literal_nodes(source: str) -> list[ast.Constant]:
    try:
        return _secret_nodes(ast.parse(source))
    except SyntaxError:
        return []


def _mask_in_place(raw: str, python: str, nodes: list[ast.Constant]) -> tuple[str, list[tuple[str, str]]]:
    """``raw`` with each one-line literal masked where it stands (lines of ``raw`` and ``python``
    agree outside magics); the source text of literals that could not be placed."""
    raw_lines = raw.splitlines(keepends=True)
    py_lines = python.splitlines(keepends=True)
    edits: dict[int, list[tuple[int, int, str]]] = {}
    unplaced: list[tuple[str, str]] = []
    for node in nodes:
        seg = ast.get_source_segment(python, node) or ""
        i = node.lineno - 1
        if (node.lineno == node.end_lineno and i < len(raw_lines) and i < len(py_lines)
                and raw_lines[i] == py_lines[i] and node.value in seg):
            edits.setdefault(i, []).append((node.col_offset, node.end_col_offset, seg.replace(node.value, MASK)))
        elif seg and node.value in seg:
            unplaced.append((seg, node.value))
    for i, spans in edits.items():
        line = raw_lines[i].encode()  # AST offsets count UTF-8 bytes
        for start, end, new in sorted(set(spans), reverse=True):
            line = line[:start] + new.encode() + line[end:]
        raw_lines[i] = line.decode()
    return "".join(raw_lines), unplaced


_LONG_SECRET = 6  # a secret this long is masked wherever it appears, not only as the literal


def mask_source(raw: str, python_source: str | None = None) -> str:
    """``raw`` with each secret literal found in ``python_source`` (default ``raw``) and each
    secret found by its shape as ``***``; the rest of the code is kept as written.

    ``python_source`` is the cell after IPython's transforms, which parses even when
    ``raw`` holds magics. Only the secret literal is masked (``tokenizer = "bert"`` stays); a
    secret of 6 characters or more is masked wherever else it appears in the cell too.
    """
    python = python_source or raw
    nodes = _literal_nodes(python)
    raw, unplaced = _mask_in_place(raw, python, nodes)
    for seg, value in sorted(set(unplaced), key=lambda sv: len(sv[0]), reverse=True):
        raw = raw.replace(seg, seg.replace(value, MASK))
    for value in sorted({n.value for n in nodes if len(n.value) >= _LONG_SECRET}, key=len, reverse=True):
        raw = raw.replace(value, MASK)
    return _mask_shapes(raw)
