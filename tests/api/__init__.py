"""Tests of the HTTP edge, through the ASGI app."""
