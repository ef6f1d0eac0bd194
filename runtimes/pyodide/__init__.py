"""The pyodide runtime: Python in WebAssembly (Pyodide) run by a Node.js worker in the jail."""
