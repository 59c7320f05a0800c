"""Optional generators that polish template drafts, registered by name.

``"transformers:<path>"``
    A local causal or sequence-to-sequence model loaded with ``transformers`` (the
    ``transformers`` extra); nothing is downloaded.
``"openai:<base url>[#model]"``
    Any OpenAI-compatible chat-completions endpoint (``model=`` and ``api_key=`` options, or
    ``OPENAI_API_KEY``); ``#qwen2.5-7b`` after the URL names the model.

Generated text is only used when it passes :func:`check_polished` (keeps every number of the
template draft and its fill-in markers, right language and script, bounded length); otherwise
the template draft stays and the reason is recorded in ``Draft.generator_notes``.
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from collections.abc import Callable
from dataclasses import replace

from retrieval.schema import PLACEHOLDER_RE
from retrieval.text import detect_language

from .composer import Draft

_GENERATORS: dict[str, Callable[..., Generator]] = {}
_NUMBER_RE = re.compile(r"\d+(?:[.,:]\d+)*")
_MARKER_RE = re.compile(r"【请填写[^】]*】|【請填寫[^】]*】|\[fill in [^\]]*\]")
_INSTRUCTION = {
    "zh": "请润色下面这条客服回复，使其更自然、礼貌。保留所有事实、数字和【】标记，不要添加新信息，只输出回复正文：\n",
    "en": "Polish this customer-service reply so it reads naturally and politely. Keep every fact, "
          "number and [fill in ...] marker, add nothing new, and output only the reply:\n",
}


def check_polished(original: str, candidate: object, lang: str) -> str | None:
    """Why `candidate` cannot replace `original` (None when it can)."""
    if not isinstance(candidate, str):
        return f"not text ({type(candidate).__name__})"
    candidate = candidate.strip()
    if not candidate:
        return "empty output"
    if PLACEHOLDER_RE.search(candidate):
        return "contains a placeholder"
    before, after = set(_NUMBER_RE.findall(original)), set(_NUMBER_RE.findall(candidate))
    if before - after:
        return f"dropped or changed numbers {sorted(before - after)[:5]}"
    if after - before:
        return f"added numbers {sorted(after - before)[:5]} that are not in the draft"
    if sorted(_MARKER_RE.findall(original)) != sorted(_MARKER_RE.findall(candidate)):
        return "dropped a fill-in marker"
    expected = detect_language(original)
    got = detect_language(candidate)
    if got != expected:
        return f"language {got}, expected {expected}"
    if not 0.5 * len(original) <= len(candidate) <= 2.0 * len(original):
        return f"length {len(candidate)} outside 0.5-2x the draft ({len(original)})"
    return None


class Generator:
    """Base class: subclasses implement :meth:`generate` (instruction + draft -> text)."""

    name = "generator"

    def generate(self, prompt: str, lang: str) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def polish(self, draft: Draft) -> Draft:
        """Polish both languages; keep each generated text only if it passes the checks."""
        changes: dict[str, str] = {}
        notes: list[str] = []
        for lang in ("zh", "en"):
            original = draft.text(lang)
            try:
                candidate = self.generate(_INSTRUCTION[lang] + original, lang)
                if not isinstance(candidate, str):  # None (a null "content"), a number, ...
                    raise TypeError(f"returned {type(candidate).__name__}, not text")
                problem = check_polished(original, candidate, lang)
            except Exception as exc:  # a generator failing must never lose the draft
                notes.append(f"{lang}: generator failed ({type(exc).__name__}: {exc})")
                continue
            if problem:
                notes.append(f"{lang}: kept the template ({problem})")
            else:
                changes[lang] = candidate.strip()
        return replace(draft, **changes, generator=self.name if changes else draft.generator,
                       generator_notes=tuple(notes))


def register_generator(prefix: str) -> Callable:
    """Register a factory ``factory(arg, **options) -> Generator`` under ``prefix`` (spec ``prefix:arg``)."""
    def decorator(factory):
        _GENERATORS[prefix] = factory
        return factory
    return decorator


def make_generator(spec: str, **options) -> Generator:
    """Build a generator from a spec such as ``"transformers:/models/qwen"`` or
    ``"openai:http://localhost:8000/v1"``."""
    prefix, _, arg = spec.partition(":")
    if prefix not in _GENERATORS:
        raise ValueError(f"unknown generator {spec!r}; registered: {sorted(_GENERATORS)}")
    if not arg:
        raise ValueError(f"generator {prefix!r} needs an argument: '{prefix}:<path or url>'")
    return _GENERATORS[prefix](arg, **options)


class TransformersGenerator(Generator):
    """A local Hugging Face model (causal or encoder-decoder), greedy decoding, CPU."""

    def __init__(self, path: str, *, max_new_tokens: int = 256) -> None:
        self.path = path
        self.max_new_tokens = max_new_tokens
        self.name = f"transformers:{path}"
        self._model = None

    def warm_up(self) -> None:
        if self._model is None:
            from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

            config = AutoConfig.from_pretrained(self.path, local_files_only=True)
            cls = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
            self._tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
            self._model = cls.from_pretrained(self.path, local_files_only=True).eval()
            self._seq2seq = config.is_encoder_decoder

    def generate(self, prompt: str, lang: str) -> str:
        import torch

        self.warm_up()
        inputs = self._tokenizer(prompt, return_tensors="pt", truncation=True, max_length=1024)
        pad = self._tokenizer.pad_token_id if self._tokenizer.pad_token_id is not None else self._tokenizer.eos_token_id
        with torch.no_grad():
            out = self._model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False,
                                       pad_token_id=pad)
        tokens = out[0] if self._seq2seq else out[0][inputs["input_ids"].shape[1]:]
        return self._tokenizer.decode(tokens, skip_special_tokens=True)


class OpenAICompatibleGenerator(Generator):
    """``POST {base_url}/chat/completions`` on any OpenAI-compatible server (vLLM, llama.cpp, ...)."""

    def __init__(self, base_url: str, *, model: str = "default", api_key: str | None = None,
                 timeout: float = 20.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        self.timeout = timeout
        self.name = f"openai:{self.base_url}#{model}"

    def generate(self, prompt: str, lang: str) -> str:
        body = json.dumps({"model": self.model, "temperature": 0,
                           "messages": [{"role": "user", "content": prompt}]}).encode()
        request = urllib.request.Request(f"{self.base_url}/chat/completions", data=body, method="POST",
                                         headers={"Content-Type": "application/json",
                                                  **({"Authorization": f"Bearer {self.api_key}"} if self.api_key else {})})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            data = json.loads(response.read().decode("utf-8"))
        try:
            choice = data["choices"][0]
            content = choice["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise ValueError(f"unexpected chat-completions response: {str(data)[:200]}") from None
        if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
            texts = [part.get("text") for part in content if isinstance(part, dict) and part.get("type") == "text"]
            if texts and all(isinstance(t, str) for t in texts):
                return "".join(texts)
        if not isinstance(content, str):
            reason = choice.get("finish_reason") if isinstance(choice, dict) else None
            raise ValueError(f"the chat-completions response has no text (message.content is "
                             f"{json.dumps(content)[:80]}, finish_reason {reason!r})")
        return content


register_generator("transformers")(lambda arg, **options: TransformersGenerator(arg, **options))
def _openai(arg: str, **options) -> OpenAICompatibleGenerator:
    url, _, model = arg.partition("#")
    if model:
        options.setdefault("model", model)
    return OpenAICompatibleGenerator(url, **options)


register_generator("openai")(_openai)
