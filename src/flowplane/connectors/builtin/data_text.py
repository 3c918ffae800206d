"""Text connectors: regular expressions (size- and time-bounded) and string operations."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import regex

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._regex import (
    MAX_PATTERN_CHARS,
    MAX_REGEX_INPUT_CHARS,
    REGEX_TIMEOUT_SECONDS,
    check_regex_input,
    compile_regex,
    regex_timeout_error,
)
from flowplane.connectors.builtin._schemas import obj, out, prop
from flowplane.errors import ConnectorError

MAX_TEXT_CHARS = 10_000_000
MAX_MATCHES = 10_000

TEXT = prop("string", "The input text.", maxLength=MAX_TEXT_CHARS)
REGEX_TEXT = prop("string", "The input text.", maxLength=MAX_REGEX_INPUT_CHARS)
PATTERN = prop(
    "string", "Regular expression (Python syntax).", minLength=1, maxLength=MAX_PATTERN_CHARS
)
FLAGS = prop(
    "array", "Regex flags.", items={"enum": ["ignorecase", "multiline", "dotall"]}, uniqueItems=True
)


def _match_dict(match: Any) -> dict[str, Any]:
    return {
        "match": match.group(0),
        "start": match.start(),
        "end": match.end(),
        "groups": list(match.groups()),
        "named": match.groupdict(),
    }


def _prepare(params: dict[str, Any]) -> tuple[Any, str]:
    compiled = compile_regex(params["pattern"], params.get("flags") or [])
    check_regex_input(params["text"])
    return compiled, params["text"]


@connector(
    "data.regex_match",
    name="Regex match",
    category="data",
    kind="transform",
    description="Test whether a regular expression matches text and return the first match.",
    input_schema=obj(
        {
            "text": REGEX_TEXT,
            "pattern": PATTERN,
            "flags": FLAGS,
            "full": prop("boolean", "The whole text must match.", default=False),
        },
        ["text", "pattern"],
    ),
    output_schema=out(
        {
            "matched": prop("boolean", "Whether it matched."),
            "match": prop(["string", "null"], "The matched text."),
            "groups": prop("array", "Positional groups."),
            "named": prop("object", "Named groups."),
            "start": prop(["integer", "null"], "Start offset."),
            "end": prop(["integer", "null"], "End offset."),
        }
    ),
    examples=[{"text": "order #1234", "pattern": r"#(?P<id>\d+)"}],
)
async def regex_match(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Search ``text`` for ``pattern``."""
    compiled, text = _prepare(params)
    try:
        method = compiled.fullmatch if params.get("full") else compiled.search
        match = method(text, timeout=REGEX_TIMEOUT_SECONDS)
    except TimeoutError as exc:
        raise regex_timeout_error(exc) from exc
    if match is None:
        return {
            "matched": False,
            "match": None,
            "groups": [],
            "named": {},
            "start": None,
            "end": None,
        }
    return {"matched": True, **_match_dict(match)}


@connector(
    "data.regex_extract",
    name="Regex extract all",
    category="data",
    kind="transform",
    description="Find every match of a regular expression in text, with groups and offsets.",
    input_schema=obj(
        {
            "text": REGEX_TEXT,
            "pattern": PATTERN,
            "flags": FLAGS,
            "limit": prop(
                "integer", "Most matches returned.", minimum=1, maximum=MAX_MATCHES, default=1000
            ),
        },
        ["text", "pattern"],
    ),
    output_schema=out(
        {
            "matches": prop("array", "[{match, start, end, groups, named}]."),
            "values": prop("array", "The matched strings (group 1 when the pattern has groups)."),
            "count": prop("integer", "Number of matches."),
            "truncated": prop("boolean", "Whether the limit cut the list."),
        }
    ),
    examples=[{"text": "a@x.org, b@y.org", "pattern": r"[\w.]+@([\w.]+)"}],
)
async def regex_extract(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Find all matches of ``pattern``."""
    compiled, text = _prepare(params)
    limit = params.get("limit", 1000)
    matches: list[dict[str, Any]] = []
    truncated = False
    try:
        for match in compiled.finditer(text, timeout=REGEX_TIMEOUT_SECONDS):
            if len(matches) >= limit:
                truncated = True
                break
            matches.append(_match_dict(match))
    except TimeoutError as exc:
        raise regex_timeout_error(exc) from exc
    values = [m["groups"][0] if m["groups"] else m["match"] for m in matches]
    return {"matches": matches, "values": values, "count": len(matches), "truncated": truncated}


@connector(
    "data.regex_replace",
    name="Regex replace",
    category="data",
    kind="transform",
    description="Replace regex matches; the replacement may refer to groups as \\1 or \\g<name>.",
    input_schema=obj(
        {
            "text": REGEX_TEXT,
            "pattern": PATTERN,
            "flags": FLAGS,
            "replacement": prop(
                "string", "Replacement text (\\1, \\g<name> refer to groups).", maxLength=100_000
            ),
            "count": prop("integer", "Most replacements (0: all).", minimum=0, default=0),
        },
        ["text", "pattern", "replacement"],
    ),
    output_schema=out(
        {
            "text": prop("string", "The new text."),
            "replacements": prop("integer", "Replacements made."),
        }
    ),
    examples=[{"text": "2024-01-31", "pattern": r"(\d+)-(\d+)-(\d+)", "replacement": r"\3/\2/\1"}],
)
async def regex_replace(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Replace ``pattern`` in ``text``."""
    compiled, text = _prepare(params)
    try:
        result, made = compiled.subn(
            params["replacement"],
            text,
            count=params.get("count", 0),
            timeout=REGEX_TIMEOUT_SECONDS,
        )
    except TimeoutError as exc:
        raise regex_timeout_error(exc) from exc
    except (IndexError, re.error, regex.error, ValueError) as exc:  # bad group reference
        raise ConnectorError(f"invalid replacement: {exc}", retryable=False) from exc
    if len(result) > MAX_TEXT_CHARS:
        raise ConnectorError("result is too large", retryable=False)
    return {"text": result, "replacements": made}


@connector(
    "data.split",
    name="Split text",
    category="data",
    kind="transform",
    description="Split text by a separator, by lines, or by a regular expression.",
    input_schema=obj(
        {
            "text": REGEX_TEXT,
            "separator": prop(
                "string", "Literal separator (default: runs of whitespace).", minLength=1
            ),
            "pattern": prop(
                "string", "Or a regex separator.", minLength=1, maxLength=MAX_PATTERN_CHARS
            ),
            "lines": prop("boolean", "Split into lines.", default=False),
            "trim": prop("boolean", "Trim each part.", default=False),
            "skip_empty": prop("boolean", "Drop empty parts.", default=False),
            "max_split": prop("integer", "Most splits (0: no limit).", minimum=0, default=0),
        },
        ["text"],
    ),
    output_schema=out(
        {"parts": prop("array", "The parts."), "count": prop("integer", "Number of parts.")}
    ),
    examples=[{"text": "a, b,,c", "separator": ",", "trim": True, "skip_empty": True}],
)
async def split(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Split ``text``."""
    text, max_split = params["text"], params.get("max_split", 0)
    if params.get("lines"):
        parts = text.splitlines()
    elif params.get("pattern"):
        compiled = compile_regex(params["pattern"])
        try:
            parts = compiled.split(text, maxsplit=max_split, timeout=REGEX_TIMEOUT_SECONDS)
        except TimeoutError as exc:
            raise regex_timeout_error(exc) from exc
        parts = [p for p in parts if p is not None]
    else:
        parts = text.split(params.get("separator"), max_split or -1)
    if params.get("trim"):
        parts = [p.strip() for p in parts]
    if params.get("skip_empty"):
        parts = [p for p in parts if p]
    return {"parts": parts, "count": len(parts)}


@connector(
    "data.join",
    name="Join text",
    category="data",
    kind="transform",
    description="Join a list of values into one string with a separator.",
    input_schema=obj(
        {
            "items": prop("array", "Values to join (non-strings are converted)."),
            "separator": prop("string", "Separator.", default=""),
            "skip_empty": prop("boolean", "Skip null and empty values.", default=False),
        },
        ["items"],
    ),
    output_schema=out({"text": prop("string", "The joined text.")}),
    examples=[{"items": ["a", "b", "c"], "separator": ", "}],
)
async def join(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Join ``items``."""
    values = ["" if v is None else str(v) for v in params["items"]]
    if params.get("skip_empty"):
        values = [v for v in values if v]
    return {"text": params.get("separator", "").join(values)}


def _words(text: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", spaced)
    return [w for w in re.split(r"[^0-9A-Za-z]+", spaced) if w]


CASES = (
    "upper",
    "lower",
    "title",
    "sentence",
    "snake",
    "kebab",
    "camel",
    "pascal",
    "constant",
    "swap",
)


def _change_case(text: str, case: str) -> str:
    if case == "upper":
        return text.upper()
    if case == "lower":
        return text.lower()
    if case == "title":
        return text.title()
    if case == "swap":
        return text.swapcase()
    if case == "sentence":
        return text[:1].upper() + text[1:].lower()
    words = [w.lower() for w in _words(text)]
    if case == "snake":
        return "_".join(words)
    if case == "kebab":
        return "-".join(words)
    if case == "constant":
        return "_".join(words).upper()
    if case == "camel":
        return "".join([words[0], *(w.capitalize() for w in words[1:])]) if words else ""
    return "".join(w.capitalize() for w in words)


@connector(
    "data.change_case",
    name="Change case",
    category="data",
    kind="transform",
    description="Convert text to upper, lower, title, sentence, snake, kebab, camel or pascal.",
    input_schema=obj(
        {"text": TEXT, "case": prop("string", "Target case.", enum=list(CASES))}, ["text", "case"]
    ),
    output_schema=out({"text": prop("string", "The converted text.")}),
    examples=[{"text": "Order Total Amount", "case": "snake"}],
)
async def change_case(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Change the case of ``text``."""
    return {"text": _change_case(params["text"], params["case"])}


@connector(
    "data.trim",
    name="Trim text",
    category="data",
    kind="transform",
    description="Remove whitespace (or given characters) from the start and/or end of text.",
    input_schema=obj(
        {
            "text": TEXT,
            "side": prop("string", "Which side.", enum=["both", "start", "end"], default="both"),
            "characters": prop(
                "string", "Characters to remove (default: whitespace).", minLength=1
            ),
            "collapse": prop(
                "boolean", "Also collapse inner whitespace runs to one space.", default=False
            ),
        },
        ["text"],
    ),
    output_schema=out({"text": prop("string", "The trimmed text.")}),
    examples=[{"text": "  hello   world  ", "collapse": True}],
)
async def trim(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Trim ``text``."""
    text, chars = params["text"], params.get("characters")
    side = params.get("side", "both")
    text = (
        text.strip(chars)
        if side == "both"
        else (text.lstrip(chars) if side == "start" else text.rstrip(chars))
    )
    if params.get("collapse"):
        text = " ".join(text.split())
    return {"text": text}


@connector(
    "data.pad",
    name="Pad text",
    category="data",
    kind="transform",
    description="Pad text to a width with a fill character, on the left, right or both sides.",
    input_schema=obj(
        {
            "text": prop(["string", "number"], "The value to pad."),
            "width": prop("integer", "Target width.", minimum=0, maximum=10_000),
            "fill": prop("string", "Fill character.", minLength=1, maxLength=1, default=" "),
            "side": prop("string", "Where to pad.", enum=["left", "right", "both"], default="left"),
        },
        ["text", "width"],
    ),
    output_schema=out({"text": prop("string", "The padded text.")}),
    examples=[{"text": 42, "width": 6, "fill": "0"}],
)
async def pad(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Pad ``text`` to ``width``."""
    text, width, fill = str(params["text"]), params["width"], params.get("fill", " ")
    side = params.get("side", "left")
    if side == "left":
        return {"text": text.rjust(width, fill)}
    if side == "right":
        return {"text": text.ljust(width, fill)}
    return {"text": text.center(width, fill)}


def slugify(text: str, separator: str = "-", max_length: int = 100) -> str:
    """Return an ASCII, lowercase, URL-safe slug of ``text``.

    Args:
        text: any text.
        separator: what joins words.
        max_length: the longest slug, cut on a word boundary when possible.
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    slug = separator.join(words)
    if len(slug) > max_length:
        slug = slug[:max_length]
        cut = slug.rfind(separator)
        slug = slug[:cut] if cut > 0 else slug
    return slug


@connector(
    "data.slugify",
    name="Slugify",
    category="data",
    kind="transform",
    description="Make a lowercase ASCII URL slug from text ('Héllo World!' -> 'hello-world').",
    input_schema=obj(
        {
            "text": TEXT,
            "separator": prop("string", "Word separator.", default="-", maxLength=3),
            "max_length": prop("integer", "Longest slug.", minimum=1, maximum=1000, default=100),
        },
        ["text"],
    ),
    output_schema=out({"slug": prop("string", "The slug.")}),
    examples=[{"text": "Héllo, World! 2024"}],
)
async def slugify_text(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Slugify ``text``."""
    return {
        "slug": slugify(params["text"], params.get("separator", "-"), params.get("max_length", 100))
    }


@connector(
    "data.truncate",
    name="Truncate text",
    category="data",
    kind="transform",
    description="Shorten text to a maximum length, optionally on a word boundary with an ellipsis.",
    input_schema=obj(
        {
            "text": TEXT,
            "length": prop("integer", "Maximum length, ellipsis included.", minimum=1),
            "ellipsis": prop("string", "Appended when cut.", default="…", maxLength=10),
            "word_boundary": prop("boolean", "Cut at the last space.", default=True),
        },
        ["text", "length"],
    ),
    output_schema=out(
        {"text": prop("string", "The text."), "truncated": prop("boolean", "Whether it was cut.")}
    ),
    examples=[{"text": "The quick brown fox jumps", "length": 12}],
)
async def truncate(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Truncate ``text`` to ``length``."""
    text, length, ellipsis = params["text"], params["length"], params.get("ellipsis", "…")
    if len(text) <= length:
        return {"text": text, "truncated": False}
    room = max(length - len(ellipsis), 0)
    cut = text[:room]
    if params.get("word_boundary", True) and " " in cut:
        cut = cut[: cut.rfind(" ")]
    return {"text": cut.rstrip() + ellipsis, "truncated": True}


@connector(
    "data.replace",
    name="Replace text",
    category="data",
    kind="transform",
    description="Replace literal occurrences of substrings (a mapping applied in order).",
    input_schema=obj(
        {
            "text": TEXT,
            "replacements": prop(
                "object",
                "{find: replace} pairs.",
                minProperties=1,
                additionalProperties={"type": "string"},
            ),
            "ignore_case": prop("boolean", "Match case-insensitively.", default=False),
        },
        ["text", "replacements"],
    ),
    output_schema=out({"text": prop("string", "The new text.")}),
    examples=[{"text": "Hello NAME", "replacements": {"NAME": "Ada"}}],
)
async def replace(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Replace literal substrings."""
    text = params["text"]
    for find, new in params["replacements"].items():
        if not find:
            continue
        if params.get("ignore_case"):
            text = re.compile(re.escape(find), re.IGNORECASE).sub(new.replace("\\", "\\\\"), text)
        else:
            text = text.replace(find, new)
        if len(text) > MAX_TEXT_CHARS:
            raise ConnectorError("result is too large", retryable=False)
    return {"text": text}


@connector(
    "data.text_stats",
    name="Text statistics",
    category="data",
    kind="transform",
    description="Count characters, words, lines and bytes of text.",
    input_schema=obj({"text": TEXT}, ["text"]),
    output_schema=out(
        {
            "characters": prop("integer", "Unicode characters."),
            "words": prop("integer", "Whitespace-separated words."),
            "lines": prop("integer", "Lines."),
            "bytes": prop("integer", "UTF-8 bytes."),
        }
    ),
    examples=[{"text": "one two\nthree"}],
)
async def text_stats(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Measure ``text``."""
    text = params["text"]
    return {
        "characters": len(text),
        "words": len(text.split()),
        "lines": len(text.splitlines()),
        "bytes": len(text.encode()),
    }
