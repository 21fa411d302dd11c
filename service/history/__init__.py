"""The business rules: one operation per thing a caller can do, each owning its transaction.

HTTP controllers, the CLI and the importers call these; these call ``service.store``.
"""
