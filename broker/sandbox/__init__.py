"""Local test doubles for development, tests and ``broker demo``; never used in production.

``broker.sandbox.store`` is a faithful local BigCommerce store (management API, storefront
login by Customer Login JWT, account page, ``/customer/current.jwt``, fault switches);
``broker.sandbox.idp`` is a development OpenID Connect identity provider.
"""
