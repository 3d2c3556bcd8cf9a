"""Plain Python callables used by the example workflows in ``specs/examples``.

They import nothing from Prefect, so they can be called (and tested) like any function.
"""
