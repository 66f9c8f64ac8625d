"""A running hub process: what it holds (`Runtime`: engine, audit writer, registry snapshot,
connectors, messaging), the registry as the data plane sees it (`snapshot`), and `lgsp serve`'s
worker processes (`serve`)."""

from gateway.runtime.process import Runtime

__all__ = ["Runtime"]
