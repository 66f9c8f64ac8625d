"""Topics at run time: outbox, broker backends and delivery (not built yet)."""
