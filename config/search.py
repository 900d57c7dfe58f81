"""Kept for the migrations that import config.search (hosts 0004, nodes 0003); the helpers live in
config.db.search."""

from config.db.search import trigram_index

__all__ = ["trigram_index"]
