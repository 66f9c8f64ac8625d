"""Calls from agencies' applications: the synchronous data plane (`dataplane`, pure ASGI) and the
topic API (`topics`: publish, read a group subscription), and the toolkit both are built from:

    calls        request ids, trace context, and what a call accumulates for its record
    consumers    who is calling: a consumer's key, checked against the in-memory snapshot
    bodies       reading and parsing a JSON body: size, media type, depth
    grants       the sharing agreement and the purpose of use
    limits       a grant's rate limit and quota (429), a connector's calls at once (503)
    providers    a provider's failure or contract breach as the consumer's problem

Every call, refused or not, leaves one exchange record, committed before the answer leaves.
"""
