"""The catalogue: what consumers may discover (listing, generated OpenAPI documents) and the
lifecycle of a service version (deprecation and sunset headers, guarded retirement)."""
