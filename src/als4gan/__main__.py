"""Allow ``python -m als4gan``."""

from als4gan.cli import main

raise SystemExit(main())
