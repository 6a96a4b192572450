"""The protocol-neutral core of every sign-in (Dex's ``finalizeLogin``), with no Flask in it.

:mod:`broker.signin.service` runs a sign-in's steps in one order for OIDC and SAML alike:
the company step, resolve the customer (link, lookup, create, or ask), the link, the broker
session, the login JWT, the audit. :mod:`broker.signin.sessions` records broker sessions.
The web layer only parses requests and turns the service's outcome into a response.
"""
