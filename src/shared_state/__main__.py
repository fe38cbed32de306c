"""`python -m shared_state` behaves like the `shared-state` command."""

from shared_state.cli import main

raise SystemExit(main())
