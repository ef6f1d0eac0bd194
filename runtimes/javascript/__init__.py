"""JavaScript snippets in QuickJS (quickjs-ng): the in-jail executor."""
