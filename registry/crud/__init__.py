"""Registry operations, one module per noun: keyword-only service functions over a Session.

They add and flush; the caller bumps the revision, records the change and commits, so one
request (or one manifest) is one transaction. Refusals are `registry.crud.errors` exceptions.
"""
