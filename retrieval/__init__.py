"""The lower layer: text normalisation and tokenisation, and the sentence-encoder registry.

`retrieval` never imports `triage`, so teams that only want search can use it alone.
"""

from .encoders import Encoder, EncoderUnavailableError, available_encoders, get_encoder, register_encoder
from .text import (
    DEFAULT_MAX_CHARS,
    LANGUAGES,
    PreparedText,
    TextInputError,
    detect_language,
    normalize,
    prepare,
    to_simplified,
    to_traditional,
    tokenize,
)

__all__ = [
    "DEFAULT_MAX_CHARS", "Encoder", "EncoderUnavailableError", "LANGUAGES", "PreparedText",
    "TextInputError", "available_encoders", "detect_language", "get_encoder", "normalize", "prepare",
    "register_encoder", "to_simplified", "to_traditional", "tokenize",
]
