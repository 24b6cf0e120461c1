"""One scrubber for everything the kit writes or prints: a secret never reaches a file or a terminal.

A token has no place in a manifest, a model card, a pickled trainer argument or an error message,
and the kit cannot tell which of its files a user will publish (``rearank-kit export`` and
``train --push-to-hub`` upload a folder to a public repository). So every writer of manifests
(``manifest.build_manifest``), of export records and trainer arguments (``train/export.py``,
``train/generative.py``) and the CLI's error printer pass what they write through here.

What is a secret, and what replaces it (``***``):

* the value of a key or flag whose name has the word *token*, *key*, *secret* or *password*
  (``hub_token``, ``--api-key``, ``OPENAI_API_KEY``, ``apiKey``; words are split at ``_``, ``-``,
  ``.`` and case changes, so ``max_new_tokens`` or ``tokenizer`` are not secrets): in a mapping
  (``scrub``), on a command line (``scrub_argv``: ``--hub-token X``, ``--hub-token=X``,
  ``--set hub_token=X``) and in free text (``scrub_text``: ``hub_token=X``, ``'hub_token': 'X'``);
* the user information and the query values of a URL (``http://user:pass@host/v1?key=X`` becomes
  ``http://***@host/v1?key=***``), wherever a URL appears;
* the two token shapes a user is likely to paste anywhere: Hugging Face's ``hf_...`` and OpenAI's
  ``sk-...``, and ``Bearer ...``.

The way to give the kit a token is the ecosystem's: ``HF_TOKEN`` or ``hf auth login``
(``huggingface-cli login``) for the hub, ``OPENAI_API_KEY`` for a server; the kit never records
the environment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

REDACTED = "***"
# A name is secret when one of its words is one of these.
SECRET_WORDS = frozenset({"token", "key", "apikey", "secret", "password", "passwd", "passphrase", "credential",
                          "credentials"})  # fmt: skip
TOKEN_ADVICE = ("a token belongs in the environment (HF_TOKEN, or `hf auth login` / `huggingface-cli login`, for the "
                "Hugging Face hub; OPENAI_API_KEY for a server), never in a file the kit records")  # fmt: skip

_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")
_TOKEN_SHAPES = re.compile(r"\b(?:hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_\-]{20,})|(?i:\bbearer\s+)[A-Za-z0-9._~+/\-]+=*")
# name=value, name: value, 'name': 'value', "name": "value" (the value up to a quote, space, comma or bracket)
_ASSIGNMENT = re.compile(
    r"(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)(?P<q>['\"]?)(?P<sep>\s*[=:]\s*)(?P<open>['\"]?)(?P<value>[^\s'\",;)}\]]+)"
)


def name_words(name: str) -> list[str]:
    """``"hubToken"`` -> ``["hub", "token"]``; ``"--OPENAI_API_KEY"`` -> ``["openai", "api", "key"]``."""
    return [w.lower() for part in re.split(r"[^A-Za-z0-9]+", str(name)) for w in _WORDS.findall(part)]


def is_secret_name(name: str) -> bool:
    """Whether a key or flag named ``name`` holds a secret (one of its words is in ``SECRET_WORDS``)."""
    return any(w in SECRET_WORDS for w in name_words(name))


# --- URLs -----------------------------------------------------------------------------------------


def scrub_url(url: str) -> str:
    """``url`` without its user information and with every query (and fragment) value replaced."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
        query = _scrub_query(parts.query)
        fragment = _scrub_query(parts.fragment) if "=" in parts.fragment else parts.fragment
        return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))
    except ValueError:  # not parseable as a URL: take out what looks like user info and values
        url = re.sub(r"(://)[^/@\s]*@", rf"\1{REDACTED}@", url)
        return re.sub(r"([?&][^=&#\s]*=)[^&#\s]*", rf"\1{REDACTED}", url)


def _scrub_query(query: str) -> str:
    if not query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    if not pairs:
        return REDACTED
    return "&".join(f"{quote(k, safe='')}={REDACTED if v else ''}" for k, v in pairs)


# --- text, command lines, records -----------------------------------------------------------------


def scrub_text(text: str) -> str:
    """``text`` with every URL scrubbed (``scrub_url``), every value assigned to a secret name
    (``hub_token=X``, ``'api_key': 'X'``, ``password: X``) and every token-shaped word replaced."""
    if not text:
        return text
    text = _URL.sub(lambda m: scrub_url(m.group(0)), text)

    def assignment(m: re.Match) -> str:
        if not is_secret_name(m.group("name")) or m.group("value") == REDACTED:
            return m.group(0)
        return f"{m.group('name')}{m.group('q')}{m.group('sep')}{m.group('open')}{REDACTED}"

    text = _ASSIGNMENT.sub(assignment, text)
    return _TOKEN_SHAPES.sub(REDACTED, text)


def scrub_argv(argv: Iterable[str]) -> list[str]:
    """A command line with the value of every secret flag (``--hub-token X``, ``--api-key=X``)
    replaced, and each word scrubbed as text (URLs, ``--set hub_token=X``, ``--engine-arg key=X``)."""
    out: list[str] = []
    hide_next = False
    for word in map(str, argv):
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        if word.startswith("-") and len(word) > 1:
            flag, eq, _ = word.partition("=")
            if is_secret_name(flag):
                out.append(f"{flag}={REDACTED}" if eq else flag)
                hide_next = not eq
                continue
        out.append(scrub_text(word))
    return out


def scrub(value: Any) -> Any:
    """A copy of ``value`` (mappings, lists, tuples, strings; anything else as is) fit to be written:
    a string under a secret key is replaced, every other string scrubbed as text."""
    if isinstance(value, Mapping):
        return {k: (REDACTED if isinstance(v, str) and v and is_secret_name(str(k)) else scrub(v))
                for k, v in value.items()}  # fmt: skip
    if isinstance(value, list | tuple):
        return type(value)(scrub(v) for v in value) if isinstance(value, list) else tuple(scrub(v) for v in value)
    if isinstance(value, str):
        return scrub_text(value)
    return value


def secret_keys(mapping: Mapping[str, Any]) -> list[str]:
    """The keys of ``mapping`` (at any depth, dotted) that name a secret and hold a value."""
    found = []
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            found += [f"{key}.{k}" for k in secret_keys(value)]
        elif value not in (None, "") and is_secret_name(str(key)):
            found.append(str(key))
    return found


__all__ = ["REDACTED", "TOKEN_ADVICE", "is_secret_name", "name_words", "scrub", "scrub_argv", "scrub_text",
           "scrub_url", "secret_keys"]
