"""AI connectors for any OpenAI-compatible API: chat, embeddings, classification, extraction.

``base_url`` points at the provider (OpenAI, Azure-compatible gateways, vLLM, Ollama,
LiteLLM, ...); the API key comes from the credential named by ``credential``. Rate limits
(429) and server errors (5xx) are retried a few times here, honouring ``Retry-After``, and
then surface as retryable errors so the node's own retry policy takes over.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import jsonschema

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._credentials import credential
from flowplane.connectors.builtin._http_calls import HttpResult, http_call, status_error
from flowplane.connectors.builtin._schemas import CREDENTIAL_PROP, obj, out, prop
from flowplane.errors import ConnectorError
from flowplane.security.redaction import mask_values

DEFAULT_BASE_URL = "https://api.openai.com/v1"
MAX_RETRY_AFTER_SECONDS = 30.0
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})

PROVIDER = {
    "base_url": prop("string", "API base URL (…/v1).", default=DEFAULT_BASE_URL, maxLength=2048),
    "credential": {
        **CREDENTIAL_PROP,
        "description": "Credential holding the API key (omit for keyless local servers).",
    },
    "model": prop("string", "Model name, e.g. 'gpt-4o-mini'.", minLength=1, maxLength=256),
    "timeout": prop(
        "number", "Per-request time limit in seconds.", exclusiveMinimum=0, maximum=600, default=60
    ),
    "max_retries": prop(
        "integer", "In-node retries on 429/5xx/timeouts.", minimum=0, maximum=5, default=2
    ),
}
MESSAGES = prop(
    "array",
    "Chat messages [{role, content}].",
    minItems=1,
    maxItems=500,
    items=obj(
        {
            "role": prop("string", "Author.", enum=["system", "user", "assistant", "tool"]),
            "content": prop(["string", "array", "null"], "Text or parts."),
            "name": prop("string", "Optional author name.", maxLength=64),
        },
        ["role", "content"],
    ),
)
USAGE = prop("object", "Token usage {prompt_tokens, completion_tokens, total_tokens}.")


def _bad(message: str) -> ConnectorError:
    return ConnectorError(message, retryable=False)


def _retry_delay(result: HttpResult | None, attempt: int) -> float:
    header = result.headers.get("retry-after", "") if result is not None else ""
    try:
        return min(max(float(header), 0.0), MAX_RETRY_AFTER_SECONDS)
    except ValueError:
        return min(0.5 * 2.0**attempt, MAX_RETRY_AFTER_SECONDS)


async def call_api(
    params: dict[str, Any], ctx: NodeContext, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    """POST ``body`` to ``base_url + path`` with retries; return the decoded JSON object.

    Raises:
        ConnectorError: retryable for 429/5xx/timeouts/garbled answers after the in-node
            retries, not retryable for other 4xx answers.
    """
    key = credential(ctx, params["credential"]) if params.get("credential") else None
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    url = params.get("base_url", DEFAULT_BASE_URL).rstrip("/") + path
    timeout = float(params.get("timeout", 60))
    retries = int(params.get("max_retries", 2))
    label = "AI provider"
    for attempt in range(retries + 1):
        last = attempt == retries
        try:
            result = await http_call(
                ctx,
                "POST",
                url,
                label=label,
                timeout=timeout,
                secrets=[key],
                json=body,
                headers=headers,
            )
        except ConnectorError as exc:
            if not exc.retryable or last:
                raise
            await asyncio.sleep(_retry_delay(None, attempt))
            continue
        if result.status in RETRY_STATUSES and not last:
            ctx.logger.warning(f"{label} answered HTTP {result.status}; retrying")
            await asyncio.sleep(_retry_delay(result, attempt))
            continue
        if result.status >= 300:
            raise status_error(result, label, [key])
        if not result.is_json or not isinstance(result.json, dict):
            raise ConnectorError(
                f"{label} returned a body that is not a JSON object",
                retryable=True,
                body=mask_values(result.text[:300], [key]),
            )
        return result.json
    raise AssertionError("unreachable")  # pragma: no cover


def _parse_json(content: str) -> Any:
    text = content.strip()
    if text.startswith("```"):  # tolerate a fenced block
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return json.loads(text)


async def chat(
    params: dict[str, Any],
    ctx: NodeContext,
    messages: list[dict[str, Any]],
    response_format: dict[str, Any] | None,
) -> dict[str, Any]:
    """Run one chat completion and return ``{content, json?, usage, model, finish_reason}``."""
    body: dict[str, Any] = {"model": params["model"], "messages": messages}
    for key in ("temperature", "max_tokens", "top_p", "seed", "stop"):
        if key in params:
            body[key] = params[key]
    if response_format is not None:
        body["response_format"] = response_format
    data = await call_api(params, ctx, "/chat/completions", body)
    try:
        choice = data["choices"][0]
        content = choice["message"].get("content") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        raise ConnectorError(
            "AI provider response has no choices[0].message", retryable=True
        ) from None
    output: dict[str, Any] = {
        "content": content,
        "usage": data.get("usage") or {},
        "model": data.get("model", params["model"]),
        "finish_reason": choice.get("finish_reason"),
    }
    if response_format is not None:
        try:
            output["json"] = _parse_json(content)
        except ValueError:
            raise ConnectorError(
                "the model did not answer valid JSON", retryable=True, content=content[:500]
            ) from None
    return output


def _messages(params: dict[str, Any]) -> list[dict[str, Any]]:
    messages = list(params.get("messages") or [])
    if params.get("prompt"):
        messages.append({"role": "user", "content": params["prompt"]})
    if params.get("system"):
        messages.insert(0, {"role": "system", "content": params["system"]})
    if not messages:
        raise _bad("give 'messages' or 'prompt'")
    return messages


CHAT_OUT = out(
    {
        "content": prop("string", "The reply text."),
        "json": prop(None, "The parsed reply (response_format json/json_schema)."),
        "usage": USAGE,
        "model": prop("string", "Model that answered."),
        "finish_reason": prop(["string", "null"], "stop, length, ..."),
    }
)


@connector(
    "ai.chat",
    name="AI chat",
    category="ai",
    description="Ask an OpenAI-compatible chat model; optionally force and parse a JSON answer.",
    input_schema=obj(
        {
            **PROVIDER,
            "messages": MESSAGES,
            "prompt": prop("string", "Shortcut: one user message (appended).", maxLength=1_000_000),
            "system": prop(
                "string", "Shortcut: a system message (prepended).", maxLength=1_000_000
            ),
            "temperature": prop("number", "Sampling temperature.", minimum=0, maximum=2),
            "max_tokens": prop("integer", "Most tokens generated.", minimum=1, maximum=1_000_000),
            "top_p": prop("number", "Nucleus sampling.", minimum=0, maximum=1),
            "seed": prop("integer", "Seed for reproducible sampling."),
            "stop": prop(["string", "array"], "Stop sequence(s)."),
            "response_format": prop(
                "string",
                "text, json (any JSON object) or json_schema.",
                enum=["text", "json", "json_schema"],
                default="text",
            ),
            "json_schema": prop("object", "Schema the answer must follow (json_schema)."),
        },
        ["model"],
    ),
    output_schema=CHAT_OUT,
    secrets=["credential"],
    examples=[
        {
            "credential": "OPENAI_API_KEY",
            "model": "gpt-4o-mini",
            "system": "You are terse.",
            "prompt": "Summarise: {{ nodes.fetch.output.body }}",
            "temperature": 0.2,
            "max_tokens": 200,
        },
        {
            "base_url": "http://localhost:11434/v1",
            "model": "llama3.1",
            "messages": [{"role": "user", "content": "List 3 colours as JSON"}],
            "response_format": "json",
        },
    ],
)
async def ai_chat(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Run a chat completion."""
    mode = params.get("response_format", "text")
    response_format: dict[str, Any] | None = None
    if mode == "json":
        response_format = {"type": "json_object"}
    elif mode == "json_schema":
        if not params.get("json_schema"):
            raise _bad("response_format json_schema needs 'json_schema'")
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": params["json_schema"], "strict": True},
        }
    return await chat(params, ctx, _messages(params), response_format)


@connector(
    "ai.embed",
    name="AI embeddings",
    category="ai",
    description="Compute embedding vectors for one or more texts with an OpenAI-compatible API.",
    input_schema=obj(
        {
            **PROVIDER,
            "input": prop(
                ["string", "array"],
                "A text or a list of texts.",
                items={"type": "string"},
                maxItems=2048,
            ),
            "dimensions": prop(
                "integer",
                "Requested vector size (if the model supports it).",
                minimum=1,
                maximum=65536,
            ),
        },
        ["model", "input"],
    ),
    output_schema=out(
        {
            "embeddings": prop("array", "One vector per input, in order."),
            "dimensions": prop("integer", "Vector size."),
            "usage": USAGE,
            "model": prop("string", "Model."),
        }
    ),
    secrets=["credential"],
    examples=[
        {
            "credential": "OPENAI_API_KEY",
            "model": "text-embedding-3-small",
            "input": ["first text", "second text"],
        }
    ],
)
async def ai_embed(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Embed ``input``."""
    body: dict[str, Any] = {"model": params["model"], "input": params["input"]}
    if "dimensions" in params:
        body["dimensions"] = params["dimensions"]
    data = await call_api(params, ctx, "/embeddings", body)
    try:
        items = sorted(data["data"], key=lambda item: item.get("index", 0))
        vectors = [item["embedding"] for item in items]
    except (KeyError, TypeError, AttributeError):
        raise ConnectorError(
            "AI provider response has no data[].embedding", retryable=True
        ) from None
    return {
        "embeddings": vectors,
        "dimensions": len(vectors[0]) if vectors else 0,
        "usage": data.get("usage") or {},
        "model": data.get("model", params["model"]),
    }


@connector(
    "ai.classify",
    name="AI classify",
    category="ai",
    description="Classify text into one of the given labels with a chat model.",
    input_schema=obj(
        {
            **PROVIDER,
            "text": prop("string", "The text to classify.", maxLength=1_000_000),
            "labels": prop(
                "array",
                "Allowed labels.",
                items={"type": "string", "maxLength": 200},
                minItems=2,
                maxItems=200,
                uniqueItems=True,
            ),
            "instructions": prop(
                "string", "Extra guidance (what the labels mean).", maxLength=20_000
            ),
        },
        ["model", "text", "labels"],
    ),
    output_schema=out(
        {
            "label": prop("string", "The chosen label."),
            "confidence": prop(["number", "null"], "Model's confidence 0-1."),
            "usage": USAGE,
        }
    ),
    secrets=["credential"],
    examples=[
        {
            "credential": "OPENAI_API_KEY",
            "model": "gpt-4o-mini",
            "text": "{{ input.ticket_body }}",
            "labels": ["billing", "bug", "other"],
        }
    ],
)
async def ai_classify(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Classify ``text`` into one of ``labels``."""
    labels: list[str] = params["labels"]
    system = (
        "Classify the user's text. Answer only with a JSON object "
        '{"label": <one of the labels>, "confidence": <0..1>}. Labels: ' + json.dumps(labels)
    )
    if params.get("instructions"):
        system += "\n" + params["instructions"]
    messages = [{"role": "system", "content": system}, {"role": "user", "content": params["text"]}]
    result = await chat({"temperature": 0, **params}, ctx, messages, {"type": "json_object"})
    answer = result["json"] if isinstance(result["json"], dict) else {}
    label = answer.get("label")
    if label not in labels:
        folded = {str(x).casefold(): x for x in labels}
        label = folded.get(str(label).strip().casefold())
    if label is None:
        raise ConnectorError(f"the model answered a label outside {labels}", retryable=True)
    confidence = answer.get("confidence")
    if not isinstance(confidence, int | float) or isinstance(confidence, bool):
        confidence = None
    return {"label": label, "confidence": confidence, "usage": result["usage"]}


@connector(
    "ai.extract",
    name="AI extract",
    category="ai",
    description="Extract structured data matching a JSON Schema from text with a chat model.",
    input_schema=obj(
        {
            **PROVIDER,
            "text": prop("string", "The source text.", maxLength=1_000_000),
            "schema": prop("object", "JSON Schema of the data to extract."),
            "instructions": prop("string", "Extra guidance.", maxLength=20_000),
            "strict": prop(
                "boolean", "Fail when the answer does not match the schema.", default=True
            ),
        },
        ["model", "text", "schema"],
    ),
    output_schema=out(
        {
            "data": prop(None, "The extracted data."),
            "valid": prop("boolean", "Whether it matches the schema."),
            "errors": prop("array", "Schema violations (strict=false)."),
            "usage": USAGE,
        }
    ),
    secrets=["credential"],
    examples=[
        {
            "credential": "OPENAI_API_KEY",
            "model": "gpt-4o-mini",
            "text": "{{ input.email_body }}",
            "schema": {
                "type": "object",
                "required": ["order_id"],
                "properties": {"order_id": {"type": "string"}, "amount": {"type": "number"}},
            },
        }
    ],
)
async def ai_extract(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Extract data matching ``schema`` from ``text``."""
    schema = params["schema"]
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise _bad(f"invalid schema: {exc.message}") from None
    system = (
        "Extract data from the user's text. Answer only with JSON that follows this "
        "JSON Schema; use null for unknown values:\n" + json.dumps(schema)
    )
    if params.get("instructions"):
        system += "\n" + params["instructions"]
    messages = [{"role": "system", "content": system}, {"role": "user", "content": params["text"]}]
    result = await chat({"temperature": 0, **params}, ctx, messages, {"type": "json_object"})
    validator = jsonschema.Draft202012Validator(schema)
    errors = [
        f"/{'/'.join(map(str, e.absolute_path))}: {e.message}"[:300]
        for e in validator.iter_errors(result["json"])
    ][:50]
    if errors and params.get("strict", True):
        raise ConnectorError(
            f"extracted data does not match the schema: {errors[0]}", retryable=True, errors=errors
        )
    return {"data": result["json"], "valid": not errors, "errors": errors, "usage": result["usage"]}
