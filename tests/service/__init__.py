"""Tests of the service layer: the sync and the write-through."""
