"""The pyodide runtime's host side: its pinned distribution, its packages, its jail set-up."""
