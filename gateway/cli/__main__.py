"""`python -m gateway.cli`, the same as `lgsp`."""

from gateway.cli import main

raise SystemExit(main())
