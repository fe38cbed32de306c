"""Upstream adapters: one module per upstream API flavour, each meeting `Upstream`."""
