"""One module per router, each declaring ``ROUTER = RouterModule(...)`` (``traffic._registry``).

Modules here are found by listing the package: adding a file is adding a router. Modules whose
name starts with ``_`` are helpers shared by several routers.
"""
