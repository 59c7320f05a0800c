"""The lower layer: text normalisation and tokenisation, the sentence-encoder registry and the
bilingual knowledge base (FAISS + BM25).

`retrieval` never imports `triage`, so teams that only want search can use it alone.
"""

__version__ = "0.1.0"

from .encoders import Encoder, EncoderUnavailableError, available_encoders, get_encoder, register_encoder
from .files import DataFileError
from .index import IndexParams, VectorIndex
from .schema import KBEntry, load_entries
from .search import GapModel, Hit, KnowledgeBase, SearchConfig, SearchResult
from .store import KnowledgeBaseFileError
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
    "DEFAULT_MAX_CHARS", "DataFileError", "GapModel", "Hit", "IndexParams", "KBEntry", "KnowledgeBase",
    "KnowledgeBaseFileError", "SearchConfig", "SearchResult", "VectorIndex", "load_entries", "Encoder", "EncoderUnavailableError", "LANGUAGES", "PreparedText",
    "TextInputError", "available_encoders", "detect_language", "get_encoder", "normalize", "prepare",
    "register_encoder", "to_simplified", "to_traditional", "tokenize",
]
