"""Sub-commands of the ``als4gan`` CLI, one module each (see :mod:`als4gan.cli`)."""
