"""Bilingual reply drafts: templates (data), the composer, and optional generators that polish."""

from .composer import Draft, Drafter, tone_of
from .generators import Generator, check_polished, make_generator, register_generator
from .templates import TEMPLATE_SLOTS, TONES, TemplateSet, load_templates

__all__ = ["Draft", "Drafter", "Generator", "TEMPLATE_SLOTS", "TONES", "TemplateSet", "check_polished",
           "load_templates", "make_generator", "register_generator", "tone_of"]
