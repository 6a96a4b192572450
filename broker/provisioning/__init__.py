"""Provisioning: the identity provider creates, updates and deactivates shoppers ahead of
sign-in (SCIM 2.0 in ``scim/``; the store-side targets sit beside it)."""
