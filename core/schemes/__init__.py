"""Quantization and compression schemes; see ``catalogue()``."""

from core.schemes.base import BuildContext, BuiltVariant, Scheme, SchemeInfo, SchemeParam
from core.schemes.registry import catalogue, get_scheme

__all__ = ["BuildContext", "BuiltVariant", "Scheme", "SchemeInfo", "SchemeParam", "catalogue", "get_scheme"]
