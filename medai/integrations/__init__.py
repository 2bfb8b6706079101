"""Typed clients for external systems.

One module (or package) per provider. Nothing here imports a Django app: callers pass
credentials and options in, and get typed results or a :class:`medai.http.HttpError` out.
"""
