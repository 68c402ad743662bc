"""Declarative search spaces for ``reshape search``, installed as ``reshape.search_spaces``.

Each space is a data file beside this module; the search engine reads them through
``importlib.resources``.
"""
