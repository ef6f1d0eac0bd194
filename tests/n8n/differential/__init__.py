"""A differential test of our n8n runner against n8n's own JavaScript runner: a corpus of Code
nodes (``snippets.txt``, ``inputs.json``), the workflows that run it in a real n8n
(``run.py``), the two sides (``sides.py``), the comparison and its report (``compare.py``),
the known differences (``known.py``) and n8n's recorded answers (``golden.json``).

    python -m tests.n8n.differential          # prints the agreement report
"""

#: Agreement reports of this test session, printed by tests/conftest.py at the end.
SUMMARY: list[str] = []
