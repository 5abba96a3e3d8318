"""The consumers' side of the validated listings: mirror the published epochs, verify who vouched, query them
(``resi-data``; ``pip install '.[data]'``)."""
