"""JSON Schema checks shared by the registry and the data plane."""
