"""The Python runtime: snippets run by the interpreter that hosts the zygote."""
