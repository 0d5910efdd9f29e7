"""Layer 5, federation: the spec's request and response shapes, built from the algorithms."""
