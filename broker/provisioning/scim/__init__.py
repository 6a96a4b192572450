"""SCIM 2.0 (RFC 7643 resources, RFC 7644 protocol): the protocol layer only.

Pure functions over JSON-shaped values: parsing and validating request bodies, compiling the
filters identity providers send, applying PATCH operations, and building the documents the
endpoints serve. No Flask, no storage, no HTTP here; the service and the views sit above.
"""
