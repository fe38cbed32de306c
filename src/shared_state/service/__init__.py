"""The service layer: syncing from upstreams, writing through to them, scheduling."""
