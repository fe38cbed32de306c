"""The domain: typed state, upstream readings, the pure merge. Imports neither fastapi nor httpx."""
