"""The `openai` client, configured once, with clear errors.

Retries on 429, 5xx and connection errors are the client's own (exponential backoff with jitter,
honouring Retry-After); what is left after them is turned into one message that says what to do.
The API key never appears in a message.
"""

from __future__ import annotations

import logging
from typing import Any, Iterator

import openai

from reviewgpt.config import OpenAIConfig
from reviewgpt.errors import OpenAIConfigError, OpenAIServiceError

log = logging.getLogger(__name__)

NO_KEY_MESSAGE = ("GPT-4 side disabled: set OPENAI_API_KEY (and OPENAI_BASE_URL for an OpenAI-compatible "
                  "server such as vLLM or Ollama) to enable the GPT-4 review and the judge.")


class OpenAIChat:
    """Chat completions (plain, streamed, JSON) and raw-prompt text completions through the official
    client. `key_var` / `url_var` name the settings the error messages point at (the local reviewer
    behind an inference server has its own)."""

    def __init__(self, config: OpenAIConfig | None = None, key_var: str = "OPENAI_API_KEY",
                 url_var: str = "OPENAI_BASE_URL") -> None:
        self.config = config or OpenAIConfig()
        self.key_var, self.url_var = key_var, url_var
        key = self.config.resolved_key()
        if not key:
            raise OpenAIConfigError(NO_KEY_MESSAGE)
        self._key = key
        self.base_url = self.config.resolved_base_url()
        self.client = openai.OpenAI(api_key=key, base_url=self.base_url, timeout=self.config.timeout_s,
                                    max_retries=self.config.max_retries)

    # -------------------------------------------------------------- calls
    def complete(self, messages: list[dict[str, str]], model: str, temperature: float = 0.0,
                 response_format: dict[str, Any] | None = None, max_tokens: int | None = None) -> str:
        kw: dict[str, Any] = dict(model=model, messages=messages, temperature=temperature)
        if response_format is not None:
            kw["response_format"] = response_format
        if max_tokens:
            kw["max_tokens"] = max_tokens
        try:
            resp = self.client.chat.completions.create(**kw)
        except openai.BadRequestError as e:
            if response_format is not None and "response_format" in str(e):
                # Servers without structured output: ask again without it (the caller parses).
                kw.pop("response_format")
                return self._call(kw, model)
            raise self._explain(e, model) from e
        except openai.OpenAIError as e:
            raise self._explain(e, model) from e
        return resp.choices[0].message.content or ""

    def _call(self, kw: dict[str, Any], model: str) -> str:
        try:
            return self.client.chat.completions.create(**kw).choices[0].message.content or ""
        except openai.OpenAIError as e:
            raise self._explain(e, model) from e

    def stream(self, messages: list[dict[str, str]], model: str, temperature: float = 0.7) -> Iterator[str]:
        try:
            events = self.client.chat.completions.create(model=model, messages=messages, temperature=temperature,
                                                         stream=True)
            try:
                for event in events:
                    if event.choices and event.choices[0].delta and event.choices[0].delta.content:
                        yield event.choices[0].delta.content
            finally:  # a caller that stops early closes the HTTP stream now, not at garbage collection
                events.close()
        except openai.OpenAIError as e:
            raise self._explain(e, model) from e

    # -------------------------------------------------------------- text completions (/v1/completions)
    def complete_text(self, prompt: str | list[int], model: str, **params: Any) -> str:
        """One raw-prompt completion (the prompt as a string or as token ids); `params` are the request's
        fields (max_tokens, temperature, logit_bias, stop, extra_body, ...)."""
        try:
            resp = self.client.completions.create(model=model, prompt=prompt, **params)
        except openai.OpenAIError as e:
            raise self._explain(e, model, params) from e
        return resp.choices[0].text or ""

    def stream_text(self, prompt: str | list[int], model: str, stop: Any = None, **params: Any) -> Iterator[str]:
        """Raw-prompt completion streamed as text pieces. `stop` (a threading.Event) closes the
        connection, which vLLM and llama.cpp take as an abort of the request."""
        try:
            events = self.client.completions.create(model=model, prompt=prompt, stream=True, **params)
            try:
                for event in events:
                    if stop is not None and stop.is_set():
                        break
                    if event.choices and event.choices[0].text:
                        yield event.choices[0].text
            finally:
                events.close()
        except openai.OpenAIError as e:
            raise self._explain(e, model, params) from e

    # -------------------------------------------------------------- errors
    def _explain(self, e: Exception, model: str, params: dict[str, Any] | None = None) -> OpenAIServiceError:
        where = self.base_url or "the OpenAI API"
        retries = self.config.max_retries
        if isinstance(e, openai.BadRequestError) and params and "logit_bias" in params and \
                "logit" in str(getattr(e, "body", "") or e).lower():
            msg = (f"{where} rejected logit_bias for model '{model}' (400: {_server_message(e)}). Empty-item "
                   "suppression is sent as logit_bias: use a server that supports it (vLLM, llama.cpp's "
                   "llama-server) or set suppression to 0.")
        elif isinstance(e, openai.BadRequestError) and params is not None:
            msg = f"{where} rejected the request for model '{model}' (400: {_server_message(e)})."
        elif isinstance(e, openai.AuthenticationError):
            msg = f"The API key was rejected by {where} (401). Check {self.key_var}."
        elif isinstance(e, openai.PermissionDeniedError):
            msg = f"The API key may not use model '{model}' at {where} (403)."
        elif isinstance(e, openai.NotFoundError):
            msg = f"Model '{model}' was not found at {where} (404). Check the model name or {self.url_var}."
        elif isinstance(e, openai.RateLimitError):
            body = str(getattr(e, "body", "") or e)
            if "insufficient_quota" in body or "quota" in body.lower():
                msg = f"The account's quota at {where} is exhausted (429 insufficient_quota). Add credit or use another key."
            else:
                msg = f"Rate limited by {where} (429) after {retries} retries. Try again in a minute."
        elif isinstance(e, openai.APITimeoutError):
            msg = f"{where} did not answer within {self.config.timeout_s:g} s (after {retries} retries)."
        elif isinstance(e, openai.APIConnectionError):
            msg = f"Could not connect to {where} (after {retries} retries). Check the network or {self.url_var}."
        elif isinstance(e, openai.APIStatusError):
            msg = f"{where} returned HTTP {e.status_code} for model '{model}' (after {retries} retries)."
        else:
            msg = f"OpenAI request failed: {type(e).__name__}."
        return OpenAIServiceError(self._redact(msg))

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text


def _server_message(e: Exception) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        body = body.get("error", body)
        if isinstance(body, dict):
            return str(body.get("message") or body)[:300]
    return str(body or e)[:300]
