"""Renderers: the same `Report` for scripts (JSON) and for people (rich text)."""
