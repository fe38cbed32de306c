"""The state: the StateManager, its event bus and its snapshot file."""
